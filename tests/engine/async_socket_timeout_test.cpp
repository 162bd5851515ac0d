// Async socket timeouts: every call with a positive timeout (sock::timeout, or timed_out in
// the error_code form), zero (EAGAIN instead of waiting), none, and timers left behind.

#include "support.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using engine_test::yield_to;

constexpr auto short_timeout = 30ms;

/// What a call threw: 0 nothing, 1 sock::timeout, 2 another sock::error; and its code.
struct outcome {
    int kind = 0;
    std::error_code code;
};

template <class Awaitable>
sock::task<outcome> outcome_of(Awaitable&& op) {
    try {
        co_await op;
    } catch (const sock::timeout& e) {
        co_return outcome{1, e.code()};
    } catch (const sock::error& e) {
        co_return outcome{2, e.code()};
    }
    co_return outcome{};
}

/// An async socket connected over loopback TCP to a blocking peer that reads nothing.
struct connected {
    sock::event_loop loop;
    sock::async_socket a;
    sock::socket peer = sock::socket::invalid();
    explicit connected(sock::timeout_t t) {
        auto [accepted, connecting] = engine_test::tcp_pair();
        a = sock::async_socket(std::move(accepted), loop);
        a.settimeout(t);
        peer = std::move(connecting);
    }
    /// Fills the path to the peer, so that the next send waits.
    void fill() {
        a.raw().setsockopt(sock::opt::send_buffer_size, 4096);
        peer.setsockopt(sock::opt::receive_buffer_size, 4096);
        const std::string chunk(65536, 'x');
        while (::send(a.fileno(), chunk.data(), chunk.size(), MSG_NOSIGNAL) > 0) {
        }
    }
};

sock::socket udp_bound() {
    sock::socket s(sock::family::inet, sock::kind::dgram);
    s.bind(sock::address("127.0.0.1", 0));
    return s;
}

TEST(AsyncSocketTimeout, RecvAndRecvInto) {
    connected c(short_timeout);
    auto body = [&]() -> sock::task<> {
        auto o = co_await outcome_of(c.a.recv(10));
        EXPECT_EQ(o.kind, 1);
        EXPECT_EQ(o.code, std::errc::timed_out);
        std::error_code ec;
        EXPECT_EQ(co_await c.a.recv(10, ec), "");
        EXPECT_EQ(ec, std::errc::timed_out);
        char buf[8];
        o = co_await outcome_of(c.a.recv_into(buf));
        EXPECT_EQ(o.kind, 1);
        ec.clear();
        EXPECT_EQ(co_await c.a.recv_into(buf, ec), 0u);
        EXPECT_EQ(ec, std::errc::timed_out);
        // After timeouts the socket still works.
        c.peer.sendall("fine");
        EXPECT_EQ(co_await c.a.recv(10), "fine");
    };
    sock::run(c.loop, body());
}

TEST(AsyncSocketTimeout, SendAndSendall) {
    connected c(short_timeout);
    c.fill();
    auto body = [&]() -> sock::task<> {
        auto o = co_await outcome_of(c.a.send("x"));
        EXPECT_EQ(o.kind, 1);
        EXPECT_EQ(o.code, std::errc::timed_out);
        std::error_code ec;
        co_await c.a.send("x", ec);
        EXPECT_EQ(ec, std::errc::timed_out);
        const std::string big(1 << 20, 'y');
        o = co_await outcome_of(c.a.sendall(big));
        EXPECT_EQ(o.kind, 1);
        ec.clear();
        co_await c.a.sendall(big, ec);
        EXPECT_EQ(ec, std::errc::timed_out);
    };
    sock::run(c.loop, body());
}

TEST(AsyncSocketTimeout, Accept) {
    sock::event_loop loop;
    sock::socket l(sock::family::inet, sock::kind::stream);
    l.bind(sock::address("127.0.0.1", 0));
    l.listen(4);
    const auto where = l.getsockname();
    sock::async_socket listener(std::move(l), loop);
    listener.settimeout(short_timeout);
    auto body = [&]() -> sock::task<> {
        auto o = co_await outcome_of(listener.accept());
        EXPECT_EQ(o.kind, 1);
        std::error_code ec;
        auto none = co_await listener.accept(ec);
        EXPECT_EQ(ec, std::errc::timed_out);
        EXPECT_FALSE(none);
        // A client arrives: accepted within the same timeout.
        sock::socket client(sock::family::inet);
        client.connect(where);
        auto conn = co_await listener.accept();
        EXPECT_TRUE(conn);
    };
    sock::run(loop, body());
}

// A listener whose accept queue is full drops SYNs: connecting to it waits, then times out.
TEST(AsyncSocketTimeout, Connect) {
    sock::event_loop loop;
    sock::socket l(sock::family::inet, sock::kind::stream);
    l.bind(sock::address("127.0.0.1", 0));
    l.listen(0);
    const auto where = l.getsockname();
    std::vector<sock::socket> fillers;
    for (int i = 0; i < 2; ++i) {
        fillers.emplace_back(sock::family::inet);
        fillers.back().setblocking(false);
        std::error_code ec;
        fillers.back().connect(where, ec);
    }
    auto body = [&]() -> sock::task<> {
        sock::async_socket s(sock::socket(sock::family::inet), loop);
        s.settimeout(short_timeout);
        auto o = co_await outcome_of(s.connect(where));
        EXPECT_EQ(o.kind, 1);
        EXPECT_EQ(o.code, std::errc::timed_out);
        sock::async_socket t(sock::socket(sock::family::inet), loop);
        t.settimeout(short_timeout);
        std::error_code ec;
        EXPECT_FALSE(co_await t.connect(where, ec));
        EXPECT_EQ(ec, std::errc::timed_out);
    };
    sock::run(loop, body());
}

TEST(AsyncSocketTimeout, RecvfromInto) {
    sock::event_loop loop;
    sock::async_socket s(udp_bound(), loop);
    s.settimeout(short_timeout);
    auto body = [&]() -> sock::task<> {
        char buf[16];
        auto o = co_await outcome_of(s.recvfrom_into(buf));
        EXPECT_EQ(o.kind, 1);
        std::error_code ec;
        co_await s.recvfrom_into(buf, ec);
        EXPECT_EQ(ec, std::errc::timed_out);
    };
    sock::run(loop, body());
}

// A Unix datagram receiver that reads nothing fills up after a few datagrams; then sendto
// to it waits, and times out. (The sender is connected to it: only then does the kernel wake
// the sender when the receiver makes room.)
TEST(AsyncSocketTimeout, Sendto) {
    sock::event_loop loop;
    sock::socket receiver(sock::family::local, sock::kind::dgram);
    const auto name =
        sock::address::unix_path("@sock-engine-" + std::to_string(::getpid()) + "-sendto");
    receiver.bind(name);
    sock::socket sender(sock::family::local, sock::kind::dgram);
    sender.connect(name);
    sender.setblocking(false);
    for (;;) {
        std::error_code ec;
        sender.sendto("fill", name, 0, ec);
        if (ec) {
            ASSERT_EQ(ec, std::errc::resource_unavailable_try_again);
            break;
        }
    }
    sock::async_socket s(std::move(sender), loop);
    s.settimeout(short_timeout);
    auto body = [&]() -> sock::task<> {
        auto o = co_await outcome_of(s.sendto("more", name));
        EXPECT_EQ(o.kind, 1);
        std::error_code ec;
        co_await s.sendto("more", name, ec);
        EXPECT_EQ(ec, std::errc::timed_out);
        // Once the receiver reads, there is room again.
        char buf[16];
        receiver.recvfrom_into(buf);
        EXPECT_EQ(co_await s.sendto("more", name), 4u);
    };
    sock::run(loop, body());
}

// Timeout zero: a call that would wait fails at once with EAGAIN (not sock::timeout); one that
// need not wait succeeds.
TEST(AsyncSocketTimeout, ZeroFailsWithEagainInsteadOfWaiting) {
    connected c(sock::timeout_t(0s));
    EXPECT_EQ(c.a.gettimeout(), sock::timeout_t(0s));
    auto body = [&]() -> sock::task<> {
        std::error_code ec;
        EXPECT_EQ(co_await c.a.recv(10, ec), "");
        EXPECT_EQ(ec, std::errc::resource_unavailable_try_again);
        auto o = co_await outcome_of(c.a.recv(10));
        EXPECT_EQ(o.kind, 2);
        EXPECT_EQ(o.code, std::errc::resource_unavailable_try_again);
        c.peer.sendall("now");
        EXPECT_EQ(co_await c.a.recv(10), "now");
        c.fill();
        o = co_await outcome_of(c.a.send("x"));
        EXPECT_EQ(o.kind, 2);
        EXPECT_EQ(o.code, std::errc::resource_unavailable_try_again);
    };
    sock::run(c.loop, body());

    sock::socket l(sock::family::inet, sock::kind::stream);
    l.bind(sock::address("127.0.0.1", 0));
    l.listen(4);
    sock::async_socket listener(std::move(l), c.loop);
    listener.settimeout(0.0);
    auto accept_now = [&]() -> sock::task<> {
        auto o = co_await outcome_of(listener.accept());
        EXPECT_EQ(o.kind, 2);
        EXPECT_EQ(o.code, std::errc::resource_unavailable_try_again);
    };
    sock::run(c.loop, accept_now());
}

// No timeout waits as long as it takes; a call that completes in time leaves no timer behind
// (a stale one would resume a finished coroutine).
TEST(AsyncSocketTimeout, CompletedCallsLeaveNoTimerBehind) {
    connected c(50ms);
    auto body = [&]() -> sock::task<> {
        for (int i = 0; i < 5; ++i) {
            c.loop.post([&c] { c.peer.sendall("x"); });
            EXPECT_EQ(co_await c.a.recv(10), "x");  // waited, with a 50 ms timer
        }
        co_await sock::sleep(120ms);  // past every timer those calls started
        c.a.settimeout(std::nullopt);
        bool done = false;
        auto reader = [&]() -> sock::task<> {
            EXPECT_EQ(co_await c.a.recv(10), "late");
            done = true;
        };
        sock::spawn(reader());
        co_await sock::sleep(100ms);  // longer than the old timeout: still waiting
        EXPECT_FALSE(done);
        c.peer.sendall("late");
        while (!done) co_await yield_to{c.loop};
    };
    sock::run(c.loop, body());
}

// A sendall that times out reports what went out, as socket::sendall does: the peer receives
// exactly that many bytes.
TEST(AsyncSocketTimeout, SendallReportsTheBytesSentBeforeTheTimeout) {
    connected c(short_timeout);
    c.a.raw().setsockopt(sock::opt::send_buffer_size, 4096);  // the peer's window fills first
    const std::string big(4 << 20, 'y');
    auto body = [&]() -> sock::task<> {
        std::error_code ec;
        const auto sent = co_await c.a.sendall(big, ec);
        EXPECT_EQ(ec, std::errc::timed_out);
        EXPECT_GT(sent, 0u);
        EXPECT_LT(sent, big.size());
        c.a.close();
        c.peer.settimeout(engine_test::client_timeout);
        std::size_t got = 0;
        for (std::string part; !(part = c.peer.recv(65536)).empty();) got += part.size();
        EXPECT_EQ(got, sent);
    };
    sock::run(c.loop, body());
}

}  // namespace
