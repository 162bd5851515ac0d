// A program that uses sock as a project outside this repository does, through whatever the
// consumer test gives it (an installed prefix, pkg-config, add_subdirectory, FetchContent, the
// .deb). It asks a greet-server for its greeting twice: with the blocking library, then from
// a coroutine on the event engine. Prints both replies; exits 1 unless both are the greeting.
#include <sock/async_socket.hpp>
#include <sock/coro.hpp>
#include <sock/event_loop.hpp>
#include <sock/sock.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

namespace {

constexpr auto timeout = std::chrono::seconds(5);
constexpr const char* greeting = "welcome to server!";

std::string ask_blocking(const sock::address& server) {
    auto s = sock::create_connection(server, timeout);
    s.sendall("1");
    std::string reply;
    for (std::string part; !(part = s.recv(1024)).empty();) reply += part;
    return reply;
}

sock::task<std::string> ask_async(sock::event_loop& loop, sock::address server) {
    sock::async_socket s(sock::socket(sock::family::inet), loop);
    s.settimeout(timeout);
    co_await s.connect(server);
    co_await s.sendall("1");
    std::string reply;
    for (std::string part; !(part = co_await s.recv(1024)).empty();) reply += part;
    co_return reply;
}

}  // namespace

int main(int argc, char** argv) try {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s IPV4-ADDRESS PORT\n", argv[0]);
        return 2;
    }
    const sock::address server = sock::parse_address(std::string(argv[1]) + ":" + argv[2], 0);
    const std::string blocking = ask_blocking(server);
    sock::event_loop loop;
    const std::string engine = sock::run(loop, ask_async(loop, server));
    std::printf("sock %s\nblocking: %s\nengine: %s\n", sock::version, blocking.c_str(),
                engine.c_str());
    return blocking == greeting && engine == greeting ? 0 : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
}
