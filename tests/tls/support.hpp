#pragma once

// Helpers of the TLS tests: the test CA's files, contexts that trust it, loopback pairs, and
// a TLS server on its own thread.

#include <sock/sock.hpp>
#include <sock/ssl.hpp>

#include <gtest/gtest.h>

#include <openssl/err.h>

#include <chrono>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <utility>

namespace tls_test {

using namespace std::chrono_literals;

/// Every wait of a test is bounded by this: a hang fails instead of blocking the suite.
inline constexpr auto limit = 10s;

/// A file made by scripts/make-test-certs.sh.
inline std::string cert(const std::string& name) { return std::string(SOCK_TEST_CERTS) + "/" + name; }

/// A client context that trusts the test CA (and checks host names, as by default).
inline sock::ssl::context client_context(const std::string& ca = "ca.crt") {
    auto ctx = sock::ssl::create_default_context(sock::ssl::purpose::server_auth, cert(ca));
    return ctx;
}

/// A server context with the named certificate and key (server, server-rsa, expired...).
inline sock::ssl::context server_context(const std::string& name = "server") {
    sock::ssl::context ctx(sock::ssl::protocol::tls_server);
    ctx.load_cert_chain(cert(name + ".crt"), cert(name + ".key"));
    return ctx;
}

/// A listening TCP socket on 127.0.0.1 and a free port.
inline sock::socket listener() {
    sock::socket l(sock::family::inet);
    l.bind({"127.0.0.1", 0});
    l.listen(8);
    return l;
}

/// A client connected to l, with the test's timeout.
inline sock::socket connect_to(const sock::socket& l) {
    sock::socket c(sock::family::inet);
    c.settimeout(limit);
    c.connect(l.getsockname());
    return c;
}

/// What a server thread ended with: "" or its exception's what().
using outcome = std::future<std::string>;

/// Accepts `count` connections on l in a thread, wraps each with ctx (server side, timeout
/// `limit`) and runs handler on it; the outcome is the first failure's text, or "".
inline outcome serve(sock::socket& l, sock::ssl::context ctx,
                     std::function<void(sock::ssl::socket&)> handler, int count = 1) {
    return std::async(std::launch::async, [&l, ctx, handler, count]() -> std::string {
        try {
            for (int i = 0; i < count; ++i) {
                auto conn = l.accept().first;
                conn.settimeout(limit);
                auto tls = ctx.wrap_socket(std::move(conn), {.server_side = true});
                handler(tls);
            }
            return "";
        } catch (const std::exception& e) {
            return e.what();
        }
    });
}

/// Echoes until close_notify, then closes politely.
inline void echo(sock::ssl::socket& s) {
    for (std::string part; !(part = s.recv(65536)).empty();) s.sendall(part);
    s.close();
}

/// Whether OpenSSL holds no error on this thread (nothing stale for the next call).
inline bool queue_empty() { return ERR_peek_error() == 0; }

/// `n` bytes of a recognisable pattern.
inline std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
    return s;
}

}  // namespace tls_test
