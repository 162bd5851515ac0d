// sock::ssl::async_socket on the event engine: against our blocking TLS server on another
// thread, and against itself on one loop. The same promises as the blocking socket's, plus
// cancellation and the buffered reader and writer over TLS.

#include "support.hpp"

#include "capture.hpp"

#include <sock/async_ssl.hpp>
#include <sock/async_stream.hpp>
#include <sock/coro.hpp>
#include <sock/event_loop.hpp>
#include <sock/task.hpp>

namespace {

using namespace tls_test;
using test::capture;
namespace ssl = sock::ssl;

static_assert(sock::async_byte_stream<ssl::async_socket>);

// A client on loop, connected to l and wrapped for "localhost".
sock::task<ssl::async_socket> connect_tls(sock::event_loop& loop, const sock::socket& l,
                                          const ssl::context& ctx, const char* host = "localhost",
                                          const ssl::session* resume = nullptr) {
    sock::async_socket s(connect_to(l), loop);
    s.settimeout(limit);
    // Named, not a temporary in the co_await expression: g++ 12 moves such an aggregate
    // temporary bit for bit and frees its string twice.
    const ssl::wrap_options o{.server_hostname = host, .session = resume};
    co_return co_await ssl::async_wrap_socket(ctx, std::move(s), o);
}

TEST(AsyncSsl, EchoWithStreamReaderAndWriter) {
    auto l = listener();
    auto server = serve(l, server_context(), echo);
    sock::event_loop loop;
    auto got = sock::run(loop, [&]() -> sock::task<std::string> {
        auto tls = co_await connect_tls(loop, l, client_context());
        EXPECT_EQ(tls.version(), "TLSv1.3");
        EXPECT_FALSE(tls.ktls_send());
        sock::stream_writer<ssl::async_socket> w(tls);
        sock::stream_reader<ssl::async_socket> r(tls);
        w.write("one\n");
        w.write("two\n");
        co_await w.drain();
        std::string all(co_await r.readline());
        all += co_await r.readline();
        const auto big = pattern(1 << 20);
        co_await tls.sendall(big);
        std::string back;
        while (back.size() < big.size()) back += co_await tls.recv(1 << 16);
        EXPECT_TRUE(back == big);
        co_await tls.aclose();
        co_return all;
    }());
    EXPECT_EQ(got, "one\ntwo\n");
    EXPECT_EQ(server.get(), "");
}

TEST(AsyncSsl, ServerAndClientOnOneLoop) {
    sock::event_loop loop;
    auto l = listener();
    sock::async_socket lis(std::move(l), loop);
    auto sctx = server_context();
    auto result = sock::run(loop, [&]() -> sock::task<std::string> {
        sock::task_set tasks;
        std::string server_saw;
        auto serve_one = [&]() -> sock::task<> {  // named: the task's frame refers to it
            auto conn = co_await lis.accept();
            conn.settimeout(limit);
            const ssl::wrap_options server_side{.server_side = true};
            auto tls = co_await ssl::async_wrap_socket(sctx, std::move(conn), server_side);
            for (std::string part; !(part = co_await tls.recv(100)).empty();) {
                server_saw += part;
                co_await tls.sendall(part);
            }
            co_await tls.aclose();
        };
        tasks.spawn(serve_one());
        auto tls = co_await connect_tls(loop, lis.raw(), client_context());
        co_await tls.sendall("ping");
        std::string reply = co_await tls.recv(100);
        co_await tls.aclose();
        co_await tasks.join();
        co_return reply + "/" + server_saw;
    }());
    EXPECT_EQ(result, "ping/ping");
}

TEST(AsyncSsl, HostnameMismatchInWords) {
    auto l = listener();
    auto server = serve(l, server_context("wrong-host"), echo);
    sock::event_loop loop;
    auto t = capture([&] {
        sock::run(loop, [&]() -> sock::task<> {
            (void)co_await connect_tls(loop, l, client_context(), "example.test");
        }());
    });
    ASSERT_TRUE(t.is<ssl::error>()) << t.type_name() << ": " << t.what;
    EXPECT_EQ(t.what, "handshake 127.0.0.1:" + std::to_string(l.getsockname().port()) +
                          ": certificate verify failed: hostname mismatch (expected example.test)");
    (void)server.get();
    EXPECT_TRUE(queue_empty());
}

TEST(AsyncSsl, HandshakeTimeoutAgainstSilentPeer) {
    auto l = listener();
    sock::event_loop loop;
    std::error_code ec;
    sock::run(loop, [&]() -> sock::task<> {
        sock::async_socket s(connect_to(l), loop);
        s.settimeout(0.1);
        ssl::async_socket tls;
        try {
            const ssl::wrap_options o{.server_hostname = "localhost"};
            tls = co_await ssl::async_wrap_socket(client_context(), std::move(s), o);
        } catch (const sock::timeout& e) {
            ec = e.code();
            EXPECT_NE(std::string(e.what()).find("handshake 127.0.0.1:"), std::string::npos) << e.what();
        }
    }());
    EXPECT_EQ(ec, std::errc::timed_out);
}

TEST(AsyncSsl, HandshakeTimeoutFromContextWhenSocketHasNone) {
    auto l = listener();
    auto silent = connect_to(l);
    auto conn = l.accept().first;
    auto ctx = server_context();
    ctx.set_handshake_timeout(100ms);
    sock::event_loop loop;
    auto t = capture([&] {
        sock::run(loop, [&]() -> sock::task<> {
            sock::async_socket s(std::move(conn), loop);
            s.settimeout(std::nullopt);
            const ssl::wrap_options server_side{.server_side = true};
            (void)co_await ssl::async_wrap_socket(ctx, std::move(s), server_side);
        }());
    });
    EXPECT_TRUE(t.is<sock::timeout>()) << t.type_name() << ": " << t.what;
}

TEST(AsyncSsl, CancelledRecvEndsWithOperationCanceled) {
    auto l = listener();
    std::promise<void> done;
    auto server = serve(l, server_context(), [&](ssl::socket& s) {
        done.get_future().wait();
        s.close();
    });
    sock::event_loop loop;
    auto t = capture([&] {
        sock::run(loop, [&]() -> sock::task<> {
            auto tls = co_await connect_tls(loop, l, client_context());
            (void)co_await sock::wait_for(tls.recv(10), 50ms);
        }());
    });
    EXPECT_TRUE(t.is<sock::timeout>()) << t.type_name() << ": " << t.what;
    EXPECT_NE(t.what.find("wait_for"), std::string::npos) << t.what;
    done.set_value();
    EXPECT_EQ(server.get(), "");
}

TEST(AsyncSsl, TruncationAndCleanEnd) {
    auto l = listener();
    auto server = serve(l, server_context(), [](ssl::socket& s) {
        s.sendall("cut");
        s.raw().shutdown(sock::shut::rdwr);
    }, 1);
    sock::event_loop loop;
    std::error_code ec;
    sock::run(loop, [&]() -> sock::task<> {
        auto tls = co_await connect_tls(loop, l, client_context());
        EXPECT_EQ(co_await tls.recv(10), "cut");
        (void)co_await tls.recv(10, ec);
    }());
    EXPECT_EQ(ec, ssl::errc::unexpected_eof);
    EXPECT_EQ(server.get(), "");

    auto l2 = listener();
    auto clean = serve(l2, server_context(), [](ssl::socket& s) {
        s.sendall("end");
        s.close();
    });
    sock::run(loop, [&]() -> sock::task<> {
        auto tls = co_await connect_tls(loop, l2, client_context());
        EXPECT_EQ(co_await tls.recv(10), "end");
        EXPECT_EQ(co_await tls.recv(10), "");
        co_await tls.aclose();
    }());
    EXPECT_EQ(clean.get(), "");
}

// A short read marks the queue empty until epoll's next edge, but a socket with timeout zero
// never registers with epoll, so no edge would ever come: each call must still read.
TEST(AsyncSsl, TimeoutZeroReadsWhatCameAfterAShortRead) {
    auto l = listener();
    auto server = serve(l, server_context(), echo);
    sock::event_loop loop;
    // Retries a call that fails with EAGAIN, a millisecond apart, up to 5,000 times.
    auto retry = [](auto call) -> sock::task<std::error_code> {
        std::error_code ec;
        for (int tries = 0; tries < 5000; ++tries) {
            co_await call(ec);
            if (ec != std::errc::resource_unavailable_try_again) break;
            co_await sock::sleep(1ms);
        }
        co_return ec;
    };
    auto got = sock::run(loop, [&]() -> sock::task<std::string> {
        sock::async_socket s(connect_to(l), loop);
        s.settimeout(0.0);
        const ssl::wrap_options o{.server_hostname = "localhost", .do_handshake_on_connect = false};
        auto tls = co_await ssl::async_wrap_socket(client_context(), std::move(s), o);
        EXPECT_FALSE(co_await retry([&](std::error_code& ec) { return tls.do_handshake(ec); }));
        std::string all;
        for (const std::string part : {"one", "two", "three"}) {
            EXPECT_FALSE(co_await retry([&](std::error_code& ec) -> sock::task<> {
                (void)co_await tls.sendall(part, ec);
            }));
            std::string back;
            EXPECT_FALSE(co_await retry([&](std::error_code& ec) -> sock::task<> {
                back = co_await tls.recv(100, ec);
            }));
            all += back + "/";
        }
        tls.settimeout(limit);
        co_await tls.aclose();
        co_return all;
    }());
    EXPECT_EQ(got, "one/two/three/");
    EXPECT_EQ(server.get(), "");
}

TEST(AsyncSsl, ACloseAgainstPeerThatNeverAnswersIsBounded) {
    auto l = listener();
    std::promise<void> done;
    auto server = serve(l, server_context(), [&](ssl::socket&) { done.get_future().wait(); });
    auto ctx = client_context();
    ctx.set_shutdown_timeout(1ms);
    sock::event_loop loop;
    sock::run(loop, [&]() -> sock::task<> {
        auto tls = co_await connect_tls(loop, l, ctx);
        co_await tls.aclose();
        EXPECT_FALSE(tls);
    }());
    done.set_value();
    EXPECT_EQ(server.get(), "");
}

TEST(AsyncSsl, Tls13ResumptionAndAlpn) {
    auto l = listener();
    auto sctx = server_context();
    sctx.set_alpn_protocols({"h2"});
    auto server = serve(l, sctx, echo, 2);
    auto ctx = client_context();
    ctx.set_alpn_protocols({"h2"});
    sock::event_loop loop;
    sock::run(loop, [&]() -> sock::task<> {
        ssl::session saved;
        {
            auto first = co_await connect_tls(loop, l, ctx);
            EXPECT_EQ(first.selected_alpn_protocol(), "h2");
            co_await first.sendall("1");
            EXPECT_EQ(co_await first.recv(10), "1");
            saved = first.session();
            co_await first.aclose();
        }
        EXPECT_TRUE(saved);
        auto second = co_await connect_tls(loop, l, ctx, "localhost", &saved);
        EXPECT_TRUE(second.session_reused());
        co_await second.aclose();
    }());
    EXPECT_EQ(server.get(), "");
}

TEST(AsyncSsl, UnwrapGivesTheAsyncSocketBack) {
    auto l = listener();
    auto server = serve(l, server_context(), [](ssl::socket& s) {
        auto plain = s.unwrap();
        plain.sendall("plain");
    });
    sock::event_loop loop;
    auto got = sock::run(loop, [&]() -> sock::task<std::string> {
        auto tls = co_await connect_tls(loop, l, client_context());
        auto plain = co_await tls.unwrap();
        std::string all;
        for (std::string part; !(part = co_await plain.recv(10)).empty();) all += part;
        co_return all;
    }());
    EXPECT_EQ(got, "plain");
    EXPECT_EQ(server.get(), "");
}

}  // namespace
