// A program that uses sock::tls (pkg-config sock-tls) as a project outside this repository
// does. greet-server speaks no TLS: a handshake with it must fail with a one-line
// sock::ssl::error, which proves the library, OpenSSL and the system's CA store are reachable.
// Prints the error; exits 0 only when that is what happened.
#include <sock/sock.hpp>
#include <sock/ssl.hpp>

#include <chrono>
#include <cstdio>
#include <string>

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s IPV4-ADDRESS PORT\n", argv[0]);
        return 2;
    }
    try {
        auto ctx = sock::ssl::create_default_context();
        auto s = sock::create_connection(sock::parse_address(std::string(argv[1]) + ":" + argv[2], 0),
                                         std::chrono::seconds(5));
        auto tls = ctx.wrap_socket(std::move(s), {.server_hostname = "localhost"});
        std::fprintf(stderr, "tls consumer: a handshake with greet-server succeeded\n");
        return 1;
    } catch (const sock::ssl::error& e) {
        std::printf("tls: %s\n", e.what());
        return std::string(e.what()).find('\n') == std::string::npos ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tls consumer: %s\n", e.what());
        return 1;
    }
}
