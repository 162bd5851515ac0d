// sock::ssl against real peers started by the test: `openssl s_server` and `openssl s_client`
// (with -verify_return_error, -alpn, -sess_out/-sess_in), and Python's ssl module
// (tls_peer.py), each way round.

#include "support.hpp"

#include "child_process.hpp"

#include <sock/async_ssl.hpp>
#include <sock/coro.hpp>
#include <sock/event_loop.hpp>

#include "temp_dir.hpp"

#include <sock/stream.hpp>

namespace {

using namespace tls_test;
using greet_test::child_process;
using greet_test::stream;
namespace ssl = sock::ssl;

constexpr auto wait_limit = std::chrono::milliseconds(10000);

// Reads lines of out until one starts with prefix; returns the rest of it.
std::string line_after(child_process& p, const std::string& prefix) {
    while (auto line = p.read_line(stream::out, wait_limit)) {
        if (line->rfind(prefix, 0) == 0) return line->substr(prefix.size());
    }
    ADD_FAILURE() << "no line starting with \"" << prefix << "\"; stdout: " << p.out() << "\nstderr: " << p.err();
    return {};
}

std::uint16_t port_after(child_process& p, const std::string& prefix) {
    auto rest = line_after(p, prefix);
    const auto colon = rest.rfind(':');
    return static_cast<std::uint16_t>(std::stoi(colon == std::string::npos ? rest : rest.substr(colon + 1)));
}

sock::socket connect_port(std::uint16_t port) {
    sock::socket c(sock::family::inet);
    c.settimeout(limit);
    c.connect({"127.0.0.1", port});
    return c;
}

TEST(SslInterop, OurClientToOpensslServerWithAlpnAndResumption) {
    child_process server({SOCK_TEST_OPENSSL, "s_server", "-accept", "127.0.0.1:0", "-naccept", "2",
                          "-cert", cert("server.crt"), "-key", cert("server.key"), "-alpn", "h2", "-rev"});
    const auto port = port_after(server, "ACCEPT ");
    auto ctx = client_context();
    ctx.set_alpn_protocols({"h2", "http/1.1"});
    ssl::session saved;
    {
        auto tls = ctx.wrap_socket(connect_port(port), {.server_hostname = "localhost"});
        EXPECT_EQ(tls.selected_alpn_protocol(), "h2");
        tls.sendall("hello\n");
        sock::buffered_reader<ssl::socket> r(tls);
        EXPECT_EQ(r.readline(), "olleh\n");
        saved = tls.session();
        tls.close();
    }
    ASSERT_TRUE(saved);
    auto again = ctx.wrap_socket(connect_port(port), {.server_hostname = "localhost", .session = &saved});
    EXPECT_TRUE(again.session_reused());
    again.close();
    EXPECT_EQ(server.wait(wait_limit), 0) << server.err();
}

TEST(SslInterop, OpensslClientToOurServerVerifiesAndResumes) {
    test::temp_dir dir;
    auto l = listener();
    auto sctx = server_context();
    sctx.set_alpn_protocols({"h2"});
    auto server = serve(l, sctx, [](ssl::socket& s) {
        s.sendall("hello from sock\n");
        s.close();
    }, 2);
    const auto where = "127.0.0.1:" + std::to_string(l.getsockname().port());
    const std::vector<std::string> common = {SOCK_TEST_OPENSSL, "s_client", "-connect", where,
                                             "-CAfile", cert("ca.crt"), "-verify_return_error",
                                             "-verify_hostname", "localhost", "-servername", "localhost",
                                             "-alpn", "h2", "-ign_eof"};
    auto first_args = common;
    first_args.insert(first_args.end(), {"-sess_out", dir.file("session")});
    child_process first(first_args);
    EXPECT_EQ(first.wait(wait_limit), 0) << first.err();
    EXPECT_NE(first.out().find("hello from sock"), std::string::npos) << first.out();
    EXPECT_NE(first.out().find("ALPN protocol: h2"), std::string::npos) << first.out();
    EXPECT_NE(first.out().find("Verify return code: 0 (ok)"), std::string::npos) << first.out();
    auto second_args = common;
    second_args.insert(second_args.end(), {"-sess_in", dir.file("session")});
    child_process second(second_args);
    EXPECT_EQ(second.wait(wait_limit), 0) << second.err();
    EXPECT_NE(second.out().find("Reused, TLSv1.3"), std::string::npos) << second.out();
    EXPECT_EQ(server.get(), "");
}

TEST(SslInterop, OpensslClientRejectsWrongHost) {
    auto l = listener();
    auto server = serve(l, server_context("wrong-host"), echo);
    const auto where = "127.0.0.1:" + std::to_string(l.getsockname().port());
    child_process client({SOCK_TEST_OPENSSL, "s_client", "-connect", where, "-CAfile", cert("ca.crt"),
                          "-verify_return_error", "-verify_hostname", "localhost"});
    EXPECT_NE(client.wait(wait_limit), 0);
    const auto s = server.get();
    EXPECT_NE(s.find("alert"), std::string::npos) << s;
    EXPECT_EQ(s.find('\n'), std::string::npos) << s;
}

TEST(SslInterop, OurAsyncClientToPythonServer) {
    child_process server({SOCK_TEST_PYTHON, SOCK_TEST_PEER_PY, "server", cert("server.crt"),
                          cert("server.key"), "h2"});
    const auto port = port_after(server, "listening on ");
    auto ctx = client_context();
    ctx.set_alpn_protocols({"h2"});
    sock::event_loop loop;
    auto reply = sock::run(loop, [&]() -> sock::task<std::string> {
        sock::async_socket s(connect_port(port), loop);
        const ssl::wrap_options o{.server_hostname = "example.test"};
        auto tls = co_await ssl::async_wrap_socket(ctx, std::move(s), o);
        co_await tls.sendall("to python");
        std::string got = co_await tls.recv(100);
        co_await tls.aclose();
        co_return got;
    }());
    EXPECT_EQ(reply, "to python");
    EXPECT_EQ(line_after(server, "alpn "), "h2");
    EXPECT_EQ(server.wait(wait_limit), 0) << server.err();
    EXPECT_NE(server.out().find("done"), std::string::npos) << server.err();
}

TEST(SslInterop, PythonClientToOurServer) {
    auto l = listener();
    auto server = serve(l, server_context("server-rsa"), [](ssl::socket& s) {
        s.sendall(s.recv(100));
        s.close();  // Python reads to its end: our close_notify
    });
    child_process client({SOCK_TEST_PYTHON, SOCK_TEST_PEER_PY, "client",
                          std::to_string(l.getsockname().port()), cert("ca.crt"), "localhost"});
    EXPECT_EQ(line_after(client, "reply "), "from python");
    EXPECT_EQ(client.wait(wait_limit), 0) << client.err();
    EXPECT_EQ(server.get(), "");
}

}  // namespace

namespace {

// The peer ends TLS and speaks plaintext at once: its close_notify and "plain" come in one
// segment. unwrap() reads one record at a time, so "plain" is the plain socket's to read...
TEST(SslInterop, UnwrapLeavesWhatFollowsThePeersCloseNotifyInTheSocket) {
    child_process peer({SOCK_TEST_PYTHON, SOCK_TEST_PEER_PY, "unwrap", cert("server.crt"), cert("server.key")});
    auto tls = client_context().wrap_socket(connect_port(port_after(peer, "listening on ")),
                                            {.server_hostname = "localhost"});
    tls.sendall("tls");
    auto plain = tls.unwrap();
    EXPECT_EQ(plain.recv(10), "plain");
    plain.close();
    EXPECT_EQ(peer.wait(wait_limit), 0) << peer.err();
}

// ...but a recv that meets the close_notify reads ahead: the bytes behind it make unwrap()
// fail, saying so, instead of vanishing; with read_ahead off they stay in the socket.
TEST(SslInterop, UnwrapAfterARecvThatReadAheadFailsUnlessReadAheadIsOff) {
    for (const bool read_ahead : {true, false}) {
        child_process peer({SOCK_TEST_PYTHON, SOCK_TEST_PEER_PY, "unwrap", cert("server.crt"), cert("server.key")});
        ssl::wrap_options options{.server_hostname = "localhost"};
        options.read_ahead = read_ahead;
        auto tls = client_context().wrap_socket(connect_port(port_after(peer, "listening on ")), options);
        tls.sendall("tls");
        EXPECT_EQ(tls.recv(10), "") << "the peer's close_notify";
        if (read_ahead) {
            try {
                (void)tls.unwrap();
                ADD_FAILURE() << "unwrap gave a socket whose first bytes were read ahead";
            } catch (const ssl::error& e) {
                EXPECT_EQ(e.code(), ssl::errc::protocol_error);
                EXPECT_NE(std::string(e.what()).find("bytes that followed the peer's close_notify were read ahead"),
                          std::string::npos) << e.what();
            }
        } else {
            auto plain = tls.unwrap();
            EXPECT_EQ(plain.recv(10), "plain");
        }
        EXPECT_EQ(peer.wait(wait_limit), 0) << peer.err();
    }
}

}  // namespace
