// Buffered streams on the event engine (stream_reader, stream_writer over async_socket):
// lines arriving byte by byte, separators split across receives, the limit, end of stream,
// one deadline per call, error_code forms, and the writer's gathering and bound.

#include "support.hpp"

#include <sock/async_stream.hpp>
#include <sock/create.hpp>

#include <atomic>
#include <string>
#include <thread>

namespace {

using namespace std::chrono_literals;

/// An async socket on a loop, connected over a Unix stream pair to a blocking peer.
struct connected {
    sock::event_loop loop;
    sock::async_socket a;
    sock::socket peer = sock::socket::invalid();
    connected() {
        auto [x, y] = sock::socketpair();
        a = sock::async_socket(std::move(x), loop);
        a.settimeout(5s);  // a failure is a timeout, not a hang
        y.settimeout(engine_test::client_timeout);
        peer = std::move(y);
    }
};

TEST(StreamReader, LinesAndSeparatorsSplitAcrossReceives) {
    connected c;
    std::thread peer([&s = c.peer] {
        for (char ch : std::string("one\ntwo\r\nthree"))
            s.sendall(std::string_view(&ch, 1));
        s.shutdown(sock::shut::wr);
    });
    auto body = [&]() -> sock::task<> {
        sock::stream_reader r(c.a);
        EXPECT_EQ(co_await r.readline(), "one\n");
        EXPECT_EQ(co_await r.readuntil("\r\n"), "two\r\n");
        try {
            co_await r.readuntil("\n");
            ADD_FAILURE() << "no incomplete_read";
        } catch (const sock::incomplete_read& e) {
            EXPECT_EQ(e.partial(), "three");
        }
        EXPECT_TRUE(r.at_eof());
        EXPECT_EQ(co_await r.read(10), "");
        EXPECT_EQ(co_await r.readline(), "");
    };
    sock::run(c.loop, body());
    peer.join();
}

TEST(StreamReader, ReadexactlyAcrossReceivesAndEndOfStream) {
    connected c;
    std::thread peer([&s = c.peer] {
        s.sendall("ab");
        std::this_thread::sleep_for(20ms);
        s.sendall("cdefg");
        s.close();
    });
    auto body = [&]() -> sock::task<> {
        sock::stream_reader r(c.a);
        EXPECT_EQ(co_await r.readexactly(4), "abcd");
        std::error_code ec;
        EXPECT_EQ(co_await r.readexactly(4, ec), "efg");
        EXPECT_EQ(ec, sock::stream_errc::incomplete_read);
        try {
            co_await r.readexactly(1);
            ADD_FAILURE() << "no incomplete_read";
        } catch (const sock::incomplete_read& e) {
            EXPECT_EQ(e.partial(), "");
            EXPECT_EQ(e.expected(), 1u);
        }
    };
    sock::run(c.loop, body());
    peer.join();
}

TEST(StreamReader, OverrunLeavesTheDataReadable) {
    connected c;
    c.peer.sendall("0123456789|x\n");
    auto body = [&]() -> sock::task<> {
        sock::stream_reader r(c.a, 8);
        std::error_code ec;
        EXPECT_EQ(co_await r.readuntil("|", ec), "");
        EXPECT_EQ(ec, sock::stream_errc::limit_overrun);
        EXPECT_EQ(r.buffered(), "01234567");
        bool threw = false;
        try {
            co_await r.readuntil("|");
        } catch (const sock::limit_overrun&) {
            threw = true;
        }
        EXPECT_TRUE(threw);
        EXPECT_EQ(co_await r.read(100), "01234567");
        EXPECT_EQ(co_await r.readuntil("|"), "89|");
        EXPECT_EQ(co_await r.readline(), "x\n");
    };
    sock::run(c.loop, body());
}

// Most lines of a burst are already buffered: such a call is answered in place, without a
// coroutine frame or a suspension (W5's CPU per line); only a call that must receive runs
// as a task.
TEST(StreamReader, ABufferedLineIsAnsweredInPlace) {
    connected c;
    c.peer.sendall("one\ntwo\nthr");
    auto body = [&]() -> sock::task<> {
        sock::stream_reader r(c.a);
        EXPECT_EQ(co_await r.readline(), "one\n");  // one receive takes all of it
        auto op = r.readline();
        EXPECT_TRUE(op.await_ready());
        EXPECT_EQ(op.await_resume(), "two\n");
        std::error_code ec;
        auto partial = r.readexactly(4, ec);
        EXPECT_FALSE(partial.await_ready());  // "thr" is not enough: it will receive
        c.peer.sendall("ee\n");
        EXPECT_EQ(co_await std::move(partial), "thre");
        EXPECT_FALSE(ec);
        auto empty = r.readuntil("", ec);  // the error takes the task's path, as before
        EXPECT_EQ(co_await std::move(empty), "");
        EXPECT_EQ(ec, std::errc::invalid_argument);
        EXPECT_EQ(co_await r.readline(ec), "e\n");
    };
    sock::run(c.loop, body());
}

// asyncio's `await wait_for(reader.readline(), 2)`, and a call kept as a task.
TEST(StreamReader, WaitForBoundsOneCallAndTheReaderGoesOn) {
    connected c;
    auto body = [&]() -> sock::task<> {
        sock::stream_reader r(c.a);
        bool timed_out = false;
        try {
            co_await sock::wait_for(r.readline(), 50ms);
        } catch (const sock::timeout&) {
            timed_out = true;
        }
        EXPECT_TRUE(timed_out);
        c.peer.sendall("late\nmore\n");
        EXPECT_EQ(co_await sock::wait_for(r.readline(), 5s), "late\n");
        sock::task<std::string_view> t = r.readline();
        EXPECT_EQ(co_await std::move(t), "more\n");
    };
    sock::run(c.loop, body());
}

TEST(StreamReader, TimeoutBoundsTheWholeCall) {
    connected c;
    std::atomic<bool> stop{false};
    std::thread peer([&s = c.peer, &stop] {
        // A byte every 50 ms and never a newline: every receive is quick, the call is not.
        while (!stop) {
            std::error_code ec;
            s.sendall("x", 0, ec);
            if (ec) return;
            std::this_thread::sleep_for(50ms);
        }
    });
    c.a.settimeout(0.3);
    auto body = [&]() -> sock::task<> {
        sock::stream_reader r(c.a);
        bool timed_out = false;
        try {
            co_await r.readline();
        } catch (const sock::timeout&) {
            timed_out = true;
        }
        EXPECT_TRUE(timed_out);
        EXPECT_EQ(c.a.gettimeout(), sock::timeout_t(300ms));  // restored
        std::error_code ec;
        co_await r.readexactly(1000, ec);
        EXPECT_EQ(ec, std::errc::timed_out);
    };
    sock::run(c.loop, body());
    stop = true;
    peer.join();
}

TEST(StreamReader, ASocketWaitingToReadKeepsItsTimeoutForOthers) {
    // The reader shortens the timeout only while its receive arms its timer, so a writer of
    // the same socket that waits meanwhile gets the socket's own timeout, not the time left.
    connected c;
    c.a.settimeout(2s);
    auto body = [&]() -> sock::task<> {
        sock::stream_reader r(c.a);
        bool got = false;
        auto reader = [&]() -> sock::task<> {
            EXPECT_EQ(co_await r.readline(), "late\n");
            got = true;
        };
        sock::spawn(reader());
        EXPECT_FALSE(got);  // it waits
        EXPECT_EQ(c.a.gettimeout(), sock::timeout_t(2s));
        c.peer.sendall("late\n");
        while (!got) co_await engine_test::yield_to{c.loop};
    };
    sock::run(c.loop, body());
}

TEST(StreamWriter, GathersWritesIntoOneDrain) {
    connected c;
    auto body = [&]() -> sock::task<> {
        sock::stream_writer w(c.a, 16);
        w.write("abc");
        w.write("def");
        EXPECT_EQ(w.buffered(), "abcdef");
        // Nothing went out before drain.
        std::error_code ec;
        c.peer.settimeout(0.0);
        EXPECT_EQ(c.peer.recv(10, 0, ec), "");
        EXPECT_EQ(ec, std::errc::resource_unavailable_try_again);
        co_await w.drain();
        EXPECT_EQ(w.buffered(), "");
        c.peer.settimeout(engine_test::client_timeout);
        EXPECT_EQ(c.peer.recv(100), "abcdef");
        // The bound: a write that would pass it is refused whole.
        w.write("0123456789");
        w.write("0123456789", ec);
        EXPECT_EQ(ec, sock::stream_errc::buffer_full);
        EXPECT_EQ(w.buffered(), "0123456789");
        EXPECT_THROW(w.write("0123456789"), sock::error);
        co_await w.drain(ec);
        EXPECT_FALSE(ec);
        EXPECT_EQ(c.peer.recv(100), "0123456789");
        // A failed drain keeps what was not sent.
        c.peer.close();
        w.write("late");
        co_await w.drain(ec);
        EXPECT_TRUE(ec);
        EXPECT_EQ(w.buffered(), "late");
    };
    sock::run(c.loop, body());
}

TEST(StreamWriter, WritesWhileADrainWaitsGoOutInOrder) {
    connected c;
    const std::string big(1 << 20, 'b');  // more than the socket buffers: the drain waits
    auto body = [&]() -> sock::task<> {
        sock::stream_writer w(c.a, 2 << 20);
        w.write(big);
        bool drained = false;
        auto drainer = [&]() -> sock::task<> {
            co_await w.drain();
            drained = true;
        };
        sock::spawn(drainer());
        EXPECT_FALSE(drained);  // it waits for the peer
        w.write("tail");        // while the drain waits
        std::error_code ec;
        co_await w.drain(ec);
        EXPECT_EQ(ec, std::errc::operation_in_progress);
        std::thread peer([&s = c.peer, n = big.size() + 4] {
            sock::buffered_reader r(s, n);
            std::string got(r.readexactly(n));
            EXPECT_EQ(got.substr(got.size() - 5), "btail");
            EXPECT_EQ(got.find_first_not_of('b'), got.size() - 4);
        });
        while (!drained) co_await engine_test::yield_to{c.loop};
        EXPECT_EQ(w.buffered(), "");
        peer.join();
    };
    sock::run(c.loop, body());
}

TEST(StreamReader, WriterAndReaderAcrossTheLoop) {
    // Both ends on the engine: many small writes, one drain, read back as lines.
    sock::event_loop loop;
    auto [x, y] = sock::socketpair();
    sock::async_socket a(std::move(x), loop);
    sock::async_socket b(std::move(y), loop);
    a.settimeout(5s);
    b.settimeout(5s);
    auto body = [&]() -> sock::task<> {
        sock::stream_writer w(a);
        for (int i = 0; i < 1000; ++i) w.write(std::to_string(i) + "\n");
        co_await w.drain();
        a.shutdown(sock::shut::wr);
        sock::stream_reader r(b, 16);
        for (int i = 0; i < 1000; ++i) EXPECT_EQ(co_await r.readline(), std::to_string(i) + "\n");
        EXPECT_EQ(co_await r.readline(), "");
    };
    sock::run(loop, body());
}

}  // namespace
