// Async sockets: data, end of stream, accept and connect, datagrams, close, concurrent
// waiters, moves, short reads, partial sendall, destroyed frames, names. Timeouts are in
// async_socket_timeout_test.cpp.

#include "support.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using engine_test::yield_to;

/// An async socket on a loop, connected over loopback TCP to a blocking peer.
struct connected {
    sock::event_loop loop;
    sock::async_socket a;
    sock::socket peer = sock::socket::invalid();
    connected() {
        auto [accepted, connecting] = engine_test::tcp_pair();
        a = sock::async_socket(std::move(accepted), loop);
        a.settimeout(5s);  // a failure is a timeout, not a hang
        peer = std::move(connecting);
    }
};

/// The error a call threw, or an empty code.
template <class Awaitable>
sock::task<std::error_code> thrown_by(Awaitable&& op) {
    try {
        co_await op;
    } catch (const sock::error& e) {
        co_return e.code();
    }
    co_return std::error_code();
}

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 251) % 256);
    return s;
}

TEST(AsyncSocket, TakesOverTheDescriptorNonBlockingWithItsTimeout) {
    sock::event_loop loop;
    auto [x, y] = engine_test::tcp_pair();
    x.settimeout(3s);
    sock::async_socket a(std::move(x), loop);
    EXPECT_EQ(a.gettimeout(), sock::timeout_t(3s));
    EXPECT_FALSE(a.raw().getblocking());
    EXPECT_EQ(a.loop(), &loop);
    // A non-blocking socket (timeout zero) gets the default timeout instead: none.
    y.setblocking(false);
    sock::async_socket b(std::move(y));  // this thread's loop
    EXPECT_EQ(b.gettimeout(), sock::getdefaulttimeout());
    EXPECT_EQ(b.loop(), &loop);
    EXPECT_THROW(b.settimeout(-1.0), std::invalid_argument);
    // Without a loop on the thread, the one-argument form refuses.
    std::thread([] {
        EXPECT_THROW(sock::async_socket(sock::socket(sock::family::inet)), std::logic_error);
    }).join();
}

TEST(AsyncSocket, RecvReturnsWhatIsThereAndWaitsForWhatIsNot) {
    connected c;
    c.peer.sendall("hello");
    bool second_done = false;
    auto body = [&]() -> sock::task<> {
        EXPECT_EQ(co_await c.a.recv(100), "hello");  // there already: no wait
        auto reader = [&]() -> sock::task<> {
            EXPECT_EQ(co_await c.a.recv(100), "later");
            second_done = true;
        };
        sock::spawn(reader());
        EXPECT_FALSE(second_done);  // it waits
        c.peer.sendall("later");
        while (!second_done) co_await yield_to{c.loop};
    };
    sock::run(c.loop, body());
    EXPECT_TRUE(second_done);
}

TEST(AsyncSocket, RecvIntoAndEndOfStream) {
    connected c;
    c.peer.sendall("abcdef");
    c.peer.close();
    auto body = [&]() -> sock::task<> {
        char buf[4];
        EXPECT_EQ(co_await c.a.recv_into(buf), 4u);
        EXPECT_EQ(std::string(buf, 4), "abcd");
        EXPECT_EQ(co_await c.a.recv_into(buf), 2u);
        EXPECT_EQ(std::string(buf, 2), "ef");
        EXPECT_EQ(co_await c.a.recv_into(buf), 0u);
        EXPECT_EQ(co_await c.a.recv(10), "");
        std::error_code ec;
        EXPECT_EQ(co_await c.a.recv(10, ec), "");
        EXPECT_FALSE(ec);
    };
    sock::run(c.loop, body());
}

TEST(AsyncSocket, EndOfStreamWakesAWaitingReader) {
    connected c;
    auto body = [&]() -> sock::task<> {
        bool done = false;
        auto reader = [&]() -> sock::task<> {
            EXPECT_EQ(co_await c.a.recv(10), "");
            done = true;
        };
        sock::spawn(reader());
        EXPECT_FALSE(done);
        c.peer.shutdown(sock::shut::wr);
        while (!done) co_await yield_to{c.loop};
    };
    sock::run(c.loop, body());
}

// The peer's FIN comes with its data, before the reader looks: the read that drains the data
// is short, and the next one must still see end of stream instead of waiting for an edge.
TEST(AsyncSocket, FinArrivingWithDataIsSeenBeforeTheFirstWait) {
    connected c;
    c.peer.sendall("data");
    c.peer.shutdown(sock::shut::wr);
    auto body = [&]() -> sock::task<> {
        EXPECT_EQ(co_await c.a.recv(1024), "data");
        EXPECT_EQ(co_await c.a.recv(1024), "");  // a wait here would time out
    };
    sock::run(c.loop, body());
}

TEST(AsyncSocket, FinArrivingWithDataIsSeenOnARegisteredSocket) {
    connected c;
    auto body = [&]() -> sock::task<> {
        // First a wait, so the socket is registered with epoll.
        auto sender = [&]() -> sock::task<> {
            c.peer.sendall("first");
            co_return;
        };
        c.loop.post([&] { sock::spawn(sender()); });
        EXPECT_EQ(co_await c.a.recv(1024), "first");
        // Data and FIN together while nobody waits; let the loop take the edge.
        c.peer.sendall("data");
        c.peer.shutdown(sock::shut::wr);
        co_await yield_to{c.loop};
        co_await yield_to{c.loop};
        EXPECT_EQ(co_await c.a.recv(1024), "data");
        EXPECT_EQ(co_await c.a.recv(1024), "");
    };
    sock::run(c.loop, body());
}

TEST(AsyncSocket, FinArrivingWithDataWakesAWaitingReaderOnce) {
    connected c;
    auto body = [&]() -> sock::task<> {
        auto sender = [&]() -> sock::task<> {
            c.peer.sendall("data");
            c.peer.shutdown(sock::shut::wr);
            co_return;
        };
        c.loop.post([&] { sock::spawn(sender()); });
        EXPECT_EQ(co_await c.a.recv(1024), "data");
        EXPECT_EQ(co_await c.a.recv(1024), "");
    };
    sock::run(c.loop, body());
}

TEST(AsyncSocket, SendAndSendall) {
    connected c;
    auto body = [&]() -> sock::task<> {
        EXPECT_EQ(co_await c.a.send("abc"), 3u);
        std::error_code ec;
        EXPECT_EQ(co_await c.a.sendall("defg", ec), 4u);
        EXPECT_FALSE(ec);
    };
    sock::run(c.loop, body());
    std::string got;
    while (got.size() < 7) got += c.peer.recv(100);
    EXPECT_EQ(got, "abcdefg");
}

TEST(AsyncSocket, SendallOfSixteenMegabytesToASlowReaderCompletes) {
    connected c;
    c.a.settimeout(std::nullopt);
    const auto data = pattern(16 << 20);
    std::string got;
    std::thread reader([&] {
        char buf[1024];  // small reads: the sender waits for room many times
        for (;;) {
            const auto n = c.peer.recv_into(buf);
            if (n == 0) break;
            got.append(buf, n);
        }
    });
    auto body = [&]() -> sock::task<std::size_t> {
        const auto n = co_await c.a.sendall(data);
        c.a.shutdown(sock::shut::wr);
        co_return n;
    };
    EXPECT_EQ(sock::run(c.loop, body()), data.size());
    reader.join();
    EXPECT_EQ(got.size(), data.size());
    EXPECT_TRUE(got == data);
}

TEST(AsyncSocket, AcceptAndConnect) {
    sock::event_loop loop;
    sock::socket l(sock::family::inet, sock::kind::stream);
    l.bind(sock::address("127.0.0.1", 0));
    l.listen(8);
    const auto where = l.getsockname();
    sock::async_socket listener(std::move(l), loop);
    listener.settimeout(5s);
    auto server = [&]() -> sock::task<> {
        auto conn = co_await listener.accept();
        EXPECT_EQ(conn.loop(), &loop);
        EXPECT_EQ(conn.gettimeout(), sock::getdefaulttimeout());
        conn.settimeout(5s);
        const auto msg = co_await conn.recv(100);
        co_await conn.sendall("re:" + msg);
    };
    auto client = [&]() -> sock::task<std::string> {
        sock::async_socket s(sock::socket(sock::family::inet), loop);
        s.settimeout(5s);
        EXPECT_TRUE(co_await s.connect(where));
        EXPECT_EQ(s.raw().getpeername(), where);
        co_await s.sendall("hi");
        co_return co_await s.recv(100);
    };
    auto both = [&]() -> sock::task<std::string> {
        sock::spawn(server());  // waits in accept
        co_return co_await client();
    };
    EXPECT_EQ(sock::run(loop, both()), "re:hi");
}

TEST(AsyncSocket, ConnectRefusedReportsTheError) {
    sock::event_loop loop;
    sock::socket closed(sock::family::inet, sock::kind::stream);
    closed.bind(sock::address("127.0.0.1", 0));  // bound, not listening: refuses
    const auto where = closed.getsockname();
    auto body = [&]() -> sock::task<> {
        sock::async_socket s(sock::socket(sock::family::inet), loop);
        std::error_code ec;
        EXPECT_FALSE(co_await s.connect(where, ec));
        EXPECT_EQ(ec, std::errc::connection_refused);
        sock::async_socket t(sock::socket(sock::family::inet), loop);
        EXPECT_EQ(co_await thrown_by(t.connect(where)), std::errc::connection_refused);
        // A name is not resolved here: invalid_argument, no system call.
        sock::async_socket u(sock::socket(sock::family::inet), loop);
        EXPECT_FALSE(co_await u.connect(sock::address("localhost", where.port()), ec));
        EXPECT_EQ(ec, std::errc::invalid_argument);
    };
    sock::run(loop, body());
}

TEST(AsyncSocket, DatagramsWithRecvfromIntoAndSendto) {
    sock::event_loop loop;
    sock::socket x(sock::family::inet, sock::kind::dgram), y(sock::family::inet, sock::kind::dgram);
    x.bind(sock::address("127.0.0.1", 0));
    y.bind(sock::address("127.0.0.1", 0));
    const auto xa = x.getsockname(), ya = y.getsockname();
    sock::async_socket ax(std::move(x), loop), ay(std::move(y), loop);
    ax.settimeout(5s);
    ay.settimeout(5s);
    auto body = [&]() -> sock::task<> {
        bool got = false;
        auto receiver = [&]() -> sock::task<> {
            char buf[64];
            auto [n, from] = co_await ay.recvfrom_into(buf);
            EXPECT_EQ(std::string(buf, n), "ping");
            EXPECT_EQ(from, xa);
            EXPECT_EQ(co_await ay.sendto("pong", from), 4u);
            got = true;
        };
        sock::spawn(receiver());
        EXPECT_FALSE(got);  // it waits
        EXPECT_EQ(co_await ax.sendto("ping", ya), 4u);
        char buf[2];  // truncated: the datagram's size is not the buffer's
        std::error_code ec;
        auto [n, from] = co_await ax.recvfrom_into(buf, ec);
        EXPECT_FALSE(ec);
        EXPECT_EQ(n, 2u);
        EXPECT_EQ(std::string(buf, 2), "po");
        EXPECT_EQ(from, ya);
        EXPECT_TRUE(got);
    };
    sock::run(loop, body());
}

// A datagram read is short by nature; it says nothing about what else is queued. Two
// datagrams arriving in one epoll edge must both be read without a new edge.
TEST(AsyncSocket, RecvOnADatagramSocketReadsEveryQueuedDatagram) {
    sock::event_loop loop;
    sock::socket x(sock::family::inet, sock::kind::dgram), y(sock::family::inet, sock::kind::dgram);
    x.bind(sock::address("127.0.0.1", 0));
    y.bind(sock::address("127.0.0.1", 0));
    x.connect(y.getsockname());
    y.connect(x.getsockname());
    sock::async_socket ay(std::move(y), loop);
    ay.settimeout(2s);
    auto body = [&]() -> sock::task<> {
        std::vector<std::string> got;
        bool done = false;
        auto reader = [&]() -> sock::task<> {
            std::error_code ec;
            for (int i = 0; i < 3 && !ec; ++i) got.push_back(co_await ay.recv(100, ec));
            EXPECT_FALSE(ec) << ec.message();
            done = true;
        };
        sock::spawn(reader());  // registers and waits
        x.send("one");
        x.send("two");
        x.send("three");
        while (!done) co_await yield_to{loop};
        EXPECT_EQ(got, (std::vector<std::string>{"one", "two", "three"}));
    };
    sock::run(loop, body());
}

TEST(AsyncSocket, CloseWakesWaitersWithOperationCanceled) {
    connected c;
    // Fill the send path so that a writer waits too.
    c.a.raw().setsockopt(sock::opt::send_buffer_size, 4096);
    c.peer.setsockopt(sock::opt::receive_buffer_size, 4096);
    const std::string chunk(65536, 'x');
    while (::send(c.a.fileno(), chunk.data(), chunk.size(), MSG_NOSIGNAL) > 0) {
    }
    auto body = [&]() -> sock::task<> {
        std::error_code reader_ec, writer_ec;
        int woken = 0;
        auto reader = [&]() -> sock::task<> {
            reader_ec = co_await thrown_by(c.a.recv(10));
            ++woken;
        };
        auto writer = [&]() -> sock::task<> {
            co_await c.a.sendall(chunk, writer_ec);
            ++woken;
        };
        sock::spawn(reader());
        sock::spawn(writer());
        EXPECT_EQ(woken, 0);
        c.a.close();
        EXPECT_EQ(woken, 2);  // woken inside close()
        EXPECT_EQ(reader_ec, std::errc::operation_canceled);
        EXPECT_EQ(writer_ec, std::errc::operation_canceled);
        EXPECT_EQ(c.a.fileno(), -1);
        // Later calls fail the same way, at once; closing again does nothing.
        std::error_code ec;
        EXPECT_EQ(co_await c.a.recv(10, ec), "");
        EXPECT_EQ(ec, std::errc::operation_canceled);
        c.a.close();
        co_return;
    };
    sock::run(c.loop, body());
}

// The waiting coroutine owns the socket: woken by close(), it ends and destroys the socket
// while close() is still on the stack. close() must not touch the socket after waking it.
TEST(AsyncSocket, CloseWakesAWaiterThatDestroysTheSocket) {
    connected c;
    sock::async_socket* published = nullptr;
    std::error_code seen;
    bool ended = false;
    auto owner = [&](sock::async_socket s) -> sock::task<> {
        published = &s;
        std::error_code ec;
        co_await s.recv(10, ec);
        seen = ec;
        published = nullptr;
        ended = true;
    };  // s is destroyed here, inside the close() below
    auto body = [&]() -> sock::task<> {
        sock::spawn(owner(std::move(c.a)));
        EXPECT_NE(published, nullptr);
        if (published != nullptr) published->close();
        EXPECT_TRUE(ended);
        EXPECT_EQ(seen, std::errc::operation_canceled);
        co_return;
    };
    sock::run(c.loop, body());
}

TEST(AsyncSocket, ASecondReaderOrWriterGetsOperationInProgress) {
    connected c;
    auto body = [&]() -> sock::task<> {
        std::string first;
        auto reader = [&]() -> sock::task<> { first = co_await c.a.recv(10); };
        sock::spawn(reader());
        std::error_code ec;
        EXPECT_EQ(co_await c.a.recv(10, ec), "");
        EXPECT_EQ(ec, std::errc::operation_in_progress);
        EXPECT_EQ(co_await thrown_by(c.a.recv(10)), std::errc::operation_in_progress);
        // The first reader is unaffected.
        c.peer.sendall("ok");
        while (first.empty()) co_await yield_to{c.loop};
        EXPECT_EQ(first, "ok");

        // Same for writers, once one waits for room.
        c.a.raw().setsockopt(sock::opt::send_buffer_size, 4096);
        c.peer.setsockopt(sock::opt::receive_buffer_size, 4096);
        const std::string chunk(65536, 'x');
        while (::send(c.a.fileno(), chunk.data(), chunk.size(), MSG_NOSIGNAL) > 0) {
        }
        std::error_code writer_ec;
        bool writer_done = false;
        auto writer = [&]() -> sock::task<> {
            co_await c.a.send("y", writer_ec);
            writer_done = true;
        };
        sock::spawn(writer());
        EXPECT_FALSE(writer_done);
        EXPECT_EQ(co_await thrown_by(c.a.send("z")), std::errc::operation_in_progress);
        c.a.close();
        EXPECT_EQ(writer_ec, std::errc::operation_canceled);
    };
    sock::run(c.loop, body());
}

TEST(AsyncSocket, OneReaderAndOneWriterWaitAtOnce) {
    connected c;
    c.a.settimeout(std::nullopt);
    const auto data = pattern(4 << 20);
    auto body = [&]() -> sock::task<> {
        std::string got;
        bool reader_done = false;
        auto reader = [&]() -> sock::task<> {
            got = co_await c.a.recv(100);  // waits until the peer echoes the end
            reader_done = true;
        };
        sock::spawn(reader());
        std::thread peer([&] {
            std::size_t total = 0;
            char buf[65536];
            while (total < data.size()) total += c.peer.recv_into(buf);
            c.peer.sendall("all read");
        });
        co_await c.a.sendall(data);  // waits for room while the reader waits for data
        while (!reader_done) co_await yield_to{c.loop};
        peer.join();
        EXPECT_EQ(got, "all read");
    };
    sock::run(c.loop, body());
}

// A registered socket moved between awaits keeps its registration: events reach the new object.
TEST(AsyncSocket, MovingARegisteredSocketBetweenAwaits) {
    connected c;
    auto body = [&]() -> sock::task<> {
        auto send_later = [&](std::string msg) {
            c.loop.post([&c, msg] { c.peer.sendall(msg); });
        };
        send_later("one");
        EXPECT_EQ(co_await c.a.recv(10), "one");  // waited: registered now
        const int fd = c.a.fileno();
        sock::async_socket moved(std::move(c.a));
        EXPECT_EQ(c.a.fileno(), -1);
        EXPECT_EQ(moved.fileno(), fd);
        send_later("two");
        EXPECT_EQ(co_await moved.recv(10), "two");
        // Into a vector that reallocates, then move-assigned over another registered socket.
        std::vector<sock::async_socket> v;
        v.push_back(std::move(moved));
        for (int i = 0; i < 8; ++i) v.emplace_back();
        send_later("three");
        EXPECT_EQ(co_await v[0].recv(10), "three");
        auto pair = engine_test::tcp_pair();
        sock::async_socket target(std::move(pair.first), c.loop);
        target.settimeout(5s);
        sock::socket& other_peer = pair.second;
        c.loop.post([&other_peer] { other_peer.sendall("x"); });
        EXPECT_EQ(co_await target.recv(10), "x");  // registered
        const int old_fd = target.fileno();
        target = std::move(v[0]);
        EXPECT_EQ(target.fileno(), fd);
        EXPECT_EQ(::fcntl(old_fd, F_GETFD) == -1 ? errno : 0, EBADF);  // the old one closed
        send_later("four");
        EXPECT_EQ(co_await target.recv(10), "four");
    };
    sock::run(c.loop, body());
}

/// Waits (bounded) until at least n bytes are queued for reading on fd.
bool wait_queued(int fd, int n) {
    for (int i = 0; i < 2000; ++i) {
        int queued = 0;
        if (::ioctl(fd, FIONREAD, &queued) == 0 && queued >= n) return true;
        std::this_thread::sleep_for(1ms);
    }
    return false;
}

// A TCP read stops at the urgent mark (MSG_OOB) with bytes still queued. On a socket registered
// with epoll no new edge comes for them, so that short read must not be taken as "drained".
TEST(AsyncSocket, ReadStoppingAtTheUrgentMarkLosesNoWakeUp) {
    connected c;
    c.a.settimeout(2s);
    c.peer.setsockopt(sock::opt::tcp_nodelay, true);
    auto body = [&]() -> sock::task<> {
        c.loop.post([&] { c.peer.sendall("x"); });
        EXPECT_EQ(co_await c.a.recv(100), "x");  // it waited: registered now
        c.peer.sendall("hello");
        EXPECT_EQ(::send(c.peer.fileno(), "!", 1, MSG_OOB), 1);
        c.peer.sendall("world");
        // Loopback delivers within send; FIONREAD counts only up to the mark.
        EXPECT_TRUE(wait_queued(c.a.fileno(), 5));
        co_await sock::sleep(20ms);  // epoll reports the edge while nobody reads
        EXPECT_EQ(co_await c.a.recv(100), "hello");  // stops at the mark
        std::error_code ec;
        EXPECT_EQ(co_await c.a.recv(100, ec), "world");  // the urgent byte is out of band
        EXPECT_FALSE(ec) << ec.message();
        // Urgent data before the first wait, when nothing is registered yet.
        c.peer.sendall("one");
        EXPECT_EQ(::send(c.peer.fileno(), "!", 1, MSG_OOB), 1);
        c.peer.sendall("two");
        sock::async_socket fresh(std::move(c.a));
        EXPECT_TRUE(wait_queued(fresh.fileno(), 3));
        EXPECT_EQ(co_await fresh.recv(100), "one");
        EXPECT_EQ(co_await fresh.recv(100, ec), "two");
        EXPECT_FALSE(ec) << ec.message();
    };
    sock::run(c.loop, body());
}

// A Unix stream read stops after a message that carries descriptors (and, with SO_PASSCRED,
// between writers): bytes stay queued with no new edge to come, as above.
TEST(AsyncSocket, UnixReadStoppingAfterPassedDescriptorsLosesNoWakeUp) {
    sock::event_loop loop;
    auto pair = sock::socketpair();
    sock::async_socket a(std::move(pair.first), loop);
    sock::socket& theirs = pair.second;
    a.settimeout(2s);
    auto send_with_descriptor = [&](std::string_view data) {
        ::iovec iov{const_cast<char*>(data.data()), data.size()};
        alignas(::cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
        ::msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        ::cmsghdr* cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        const int fd = theirs.fileno();
        std::memcpy(CMSG_DATA(cm), &fd, sizeof fd);
        EXPECT_EQ(::sendmsg(theirs.fileno(), &msg, 0), static_cast<::ssize_t>(data.size()));
    };
    auto body = [&]() -> sock::task<> {
        loop.post([&] { theirs.sendall("x"); });
        EXPECT_EQ(co_await a.recv(100), "x");  // it waited: registered now
        send_with_descriptor("ab");
        theirs.sendall("cd");
        co_await sock::sleep(20ms);  // epoll reports the edge while nobody reads
        EXPECT_EQ(co_await a.recv(100), "ab");  // stops after the descriptor's message
        std::error_code ec;
        EXPECT_EQ(co_await a.recv(100, ec), "cd");
        EXPECT_FALSE(ec) << ec.message();
    };
    sock::run(loop, body());
}

// sendall ended from outside (cancel_all, close) reports what went out, as socket::sendall
// does: the peer receives exactly that many bytes.
TEST(AsyncSocket, SendallCanceledReportsTheBytesThatWentOut) {
    for (const bool by_close : {false, true}) {
        SCOPED_TRACE(by_close ? "close" : "cancel_all");
        connected c;
        c.a.raw().setsockopt(sock::opt::send_buffer_size, 4096);  // the peer's window fills first
        const std::string big(4 << 20, 'y');
        std::error_code ec;
        std::size_t sent = 0;
        bool done = false;
        auto writer = [&]() -> sock::task<> {
            sent = co_await c.a.sendall(big, ec);
            done = true;
        };
        auto body = [&]() -> sock::task<> {
            sock::spawn(writer());  // sends what fits, then waits
            EXPECT_FALSE(done);
            if (by_close) c.a.close();
            else c.loop.cancel_all();
            EXPECT_TRUE(done);
            EXPECT_EQ(ec, std::errc::operation_canceled);
            EXPECT_GT(sent, 0u);
            EXPECT_LT(sent, big.size());
            c.a.close();
            std::size_t got = 0;
            for (std::string part; !(part = c.peer.recv(65536)).empty();) got += part.size();
            EXPECT_EQ(got, sent);
            co_return;
        };
        sock::run(c.loop, body());
    }
}

// A coroutine frame destroyed while it waits in recv (with a timeout): its op leaves the socket
// and the loop, so neither the timeout nor the socket touches the freed frame (ASan), and the
// socket takes a new reader.
TEST(AsyncSocket, DestroyingAFrameThatWaitsDeregistersItsOperation) {
    connected c;
    c.a.settimeout(20ms);
    bool resumed = false;
    auto waiter = [&]() -> sock::task<> {
        co_await c.a.recv(10);
        resumed = true;
    };
    auto frame = waiter().release();
    frame.resume();  // runs up to the recv, which waits
    ASSERT_FALSE(frame.done());
    EXPECT_EQ(c.loop.timers().armed, 1u);
    frame.destroy();
    EXPECT_EQ(c.loop.timers().armed, 0u);
    auto body = [&]() -> sock::task<> {
        c.a.settimeout(2s);
        c.loop.post([&] { c.peer.sendall("ok"); });
        std::error_code ec;
        EXPECT_EQ(co_await c.a.recv(10, ec), "ok");  // the reader's slot is free
        EXPECT_FALSE(ec) << ec.message();
        co_await sock::sleep(60ms);  // past the destroyed op's timeout
        c.loop.post([&] { c.peer.sendall("ok"); });
        EXPECT_EQ(co_await c.a.recv(10), "ok");
        c.a.close();
    };
    sock::run(c.loop, body());
    EXPECT_FALSE(resumed);
    EXPECT_EQ(c.loop.timers().armed, 0u);
}

// The engine does not resolve names: a host name fails at once with invalid_argument and a
// message that says so and names the address.
TEST(AsyncSocket, AHostNameFailsWithAMessageThatSaysNamesAreNotResolved) {
    sock::event_loop loop;
    const sock::address named("localhost", 8001);
    auto message_of = [](auto&& awaitable) -> sock::task<std::string> {
        try {
            co_await awaitable;
        } catch (const sock::error& e) {
            EXPECT_EQ(e.code(), std::errc::invalid_argument);
            co_return e.what();
        }
        co_return "";
    };
    auto body = [&]() -> sock::task<> {
        const std::string why =
            "host names are not resolved here; use sock::async_create_connection or "
            "sock::async_getaddrinfo";
        sock::async_socket s(sock::socket(sock::family::inet), loop);
        EXPECT_EQ(co_await message_of(s.connect(named)), "connect localhost:8001: " + why);
        std::error_code ec;
        EXPECT_FALSE(co_await s.connect(named, ec));
        EXPECT_EQ(ec, std::errc::invalid_argument);
        EXPECT_EQ(ec.message(), why);
        sock::async_socket u(sock::socket(sock::family::inet, sock::kind::dgram), loop);
        EXPECT_EQ(co_await message_of(u.sendto("x", named)), "sendto localhost:8001: " + why);
        // A numeric address is named in the message of a real failure too.
        sock::socket closed(sock::family::inet, sock::kind::stream);
        closed.bind(sock::address("127.0.0.1", 0));  // bound, not listening: refuses
        const auto nowhere = closed.getsockname();
        sock::async_socket v(sock::socket(sock::family::inet), loop);
        std::string refused;
        try {
            co_await v.connect(nowhere);
        } catch (const sock::error& e) {
            refused = e.what();
        }
        EXPECT_EQ(refused.rfind("connect " + nowhere.to_string() + ": ", 0), 0u) << refused;
    };
    sock::run(loop, body());
}

}  // namespace

// -- wait_readable, wait_writable: for a layer making its own calls on fileno() (TLS) --------

namespace {

// The caller's own non-blocking receive, as a TLS layer makes it.
long own_recv(int fd, std::string& out) {
    char buf[256];
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) out.append(buf, static_cast<std::size_t>(n));
    return static_cast<long>(n);
}

TEST(AsyncSocketWait, ReadableAfterOwnEagainWaitsForTheNextEdge) {
    connected c;
    std::string got;
    bool waiting = false;
    auto body = [&]() -> sock::task<> {
        auto reader = [&]() -> sock::task<> {
            EXPECT_EQ(own_recv(c.a.fileno(), got), -1);  // EAGAIN: nothing yet
            waiting = true;
            EXPECT_TRUE(co_await c.a.wait_readable());
            EXPECT_GT(own_recv(c.a.fileno(), got), 0);
        };
        sock::task_set tasks;
        tasks.spawn(reader());
        while (!waiting) co_await yield_to{c.loop};
        c.peer.sendall("edge");
        co_await tasks.join();
    };
    sock::run(c.loop, body());
    EXPECT_EQ(got, "edge");
}

TEST(AsyncSocketWait, ReadableSeesDataThatCameBeforeItRegistered) {
    // Data arriving between the caller's EAGAIN and the wait: registering reports it.
    connected c;
    std::string got;
    sock::run(c.loop, [&]() -> sock::task<> {
        EXPECT_EQ(own_recv(c.a.fileno(), got), -1);
        c.peer.sendall("early");
        std::error_code ec;
        EXPECT_TRUE(co_await c.a.wait_readable(ec));
        EXPECT_FALSE(ec);
        own_recv(c.a.fileno(), got);
    }());
    EXPECT_EQ(got, "early");
}

TEST(AsyncSocketWait, TimeoutAndTimeoutZero) {
    connected c;
    c.a.settimeout(0.02);
    std::error_code ec;
    bool thrown = false;
    sock::run(c.loop, [&]() -> sock::task<> {
        EXPECT_FALSE(co_await c.a.wait_readable(ec));
        try {
            co_await c.a.wait_readable();
        } catch (const sock::timeout&) {
            thrown = true;
        }
    }());
    EXPECT_EQ(ec, std::errc::timed_out);
    EXPECT_TRUE(thrown);
    c.a.settimeout(0.0);
    sock::run(c.loop, [&]() -> sock::task<> { (void)co_await c.a.wait_writable(ec); }());
    EXPECT_EQ(ec, std::errc::resource_unavailable_try_again);
}

TEST(AsyncSocketWait, CancelledByWaitFor) {
    connected c;
    c.a.settimeout(std::nullopt);
    auto wait = [&]() -> sock::task<bool> { co_return co_await c.a.wait_readable(); };
    auto t = [&]() -> sock::task<std::string> {
        try {
            co_await sock::wait_for(wait(), 20ms);
        } catch (const sock::timeout& e) {
            co_return e.what();
        }
        co_return "";
    };
    EXPECT_EQ(sock::run(c.loop, t()), "wait_for: timed out");
}

TEST(AsyncSocketWait, WritableAfterOwnEagainOnAFullSendBuffer) {
    connected c;
    const std::string chunk(65536, 'x');
    std::size_t sent = 0;
    std::thread drain;
    sock::run(c.loop, [&]() -> sock::task<> {
        for (;;) {
            const auto n = ::send(c.a.fileno(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
            if (n < 0) break;
            sent += static_cast<std::size_t>(n);
        }
        EXPECT_EQ(errno, EAGAIN);
        drain = std::thread([&peer = c.peer, total = sent] {
            std::size_t got = 0;
            while (got < total) got += peer.recv(1 << 20).size();
        });
        EXPECT_TRUE(co_await c.a.wait_writable());
        EXPECT_GT(::send(c.a.fileno(), "y", 1, MSG_NOSIGNAL), 0);
        ++sent;
    }());
    drain.join();
}

}  // namespace
