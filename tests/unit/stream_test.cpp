// Buffered streams over the blocking socket, and their pure part, detail::read_buffer:
// separators split across receives, the limit, end of stream with partial data, one deadline
// per call, error_code forms, and the writer's gathering and bound.

#include <sock/create.hpp>
#include <sock/stream.hpp>

#include <gtest/gtest.h>

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

namespace {

using namespace std::chrono_literals;
using sock::detail::read_buffer;
using sock::detail::read_request;
using sock::detail::read_step;

/// Puts bytes into b as a receive would.
void feed(read_buffer& b, std::string_view bytes) {
    while (!bytes.empty()) {
        auto room = b.prepare();
        const auto n = std::min(room.size(), bytes.size());
        bytes.copy(room.data(), n);
        b.commit(n);
        bytes.remove_prefix(n);
    }
}

/// A connected Unix stream pair, both with a timeout so a failing test ends.
std::pair<sock::socket, sock::socket> pair() {
    auto p = sock::socketpair();
    p.first.settimeout(10s);
    p.second.settimeout(10s);
    return p;
}

TEST(ReadBuffer, FindsASeparatorSplitAcrossFeeds) {
    read_buffer b(64);
    read_request r{read_request::kind::until, "\r\n", 0, 0};
    feed(b, "abc\r");
    EXPECT_EQ(b.check(r).what, read_step::kind::more);
    feed(b, "\nrest");
    const auto s = b.check(r);
    ASSERT_EQ(s.what, read_step::kind::ready);
    EXPECT_EQ(b.take(s.len), "abc\r\n");
    EXPECT_EQ(b.data(), "rest");
}

TEST(ReadBuffer, OverrunsOnlyWhenTheLimitHoldsNoSeparator) {
    read_buffer b(8);
    read_request r{read_request::kind::until, "\n", 0, 0};
    feed(b, "1234567\n");  // exactly the limit, separator included
    auto s = b.check(r);
    ASSERT_EQ(s.what, read_step::kind::ready);
    EXPECT_EQ(b.take(s.len), "1234567\n");
    r.scanned = 0;
    feed(b, "12345678");
    EXPECT_EQ(b.check(r).what, read_step::kind::overrun);
    EXPECT_EQ(b.data(), "12345678");  // left in place
    read_request big{read_request::kind::exactly, {}, 9, 0};
    EXPECT_EQ(b.check(big).what, read_step::kind::overrun);
}

TEST(ReadBuffer, CompactsAndKeepsItsBlockOnceGrown) {
    read_buffer b(16);
    for (int i = 0; i < 100; ++i) {
        feed(b, "0123456789");
        read_request r{read_request::kind::exactly, {}, 10, 0};
        ASSERT_EQ(b.check(r).what, read_step::kind::ready);
        EXPECT_EQ(b.take(10), "0123456789");
    }
    EXPECT_EQ(b.size(), 0u);
}

TEST(BufferedReader, LinesSentByteByByte) {
    auto [a, b] = pair();
    std::thread peer([&s = b] {
        for (char c : std::string("one\ntwo\nlast")) s.sendall(std::string_view(&c, 1));
        s.shutdown(sock::shut::wr);
    });
    sock::buffered_reader r(a);
    EXPECT_EQ(r.readline(), "one\n");
    EXPECT_EQ(r.readline(), "two\n");
    EXPECT_EQ(r.readline(), "last");  // asyncio's readline: the last line as it is
    EXPECT_EQ(r.readline(), "");
    peer.join();
}

TEST(BufferedReader, ReaduntilReportsTheMissingSeparatorAtEnd) {
    auto [a, b] = pair();
    std::thread peer([&s = b] {
        for (char c : std::string("one\ntwo\nthree")) s.sendall(std::string_view(&c, 1));
        s.shutdown(sock::shut::wr);
    });
    sock::buffered_reader r(a);
    EXPECT_EQ(r.readuntil("\n"), "one\n");
    EXPECT_EQ(r.readline(), "two\n");
    try {
        r.readuntil("\n");
        ADD_FAILURE() << "no incomplete_read";
    } catch (const sock::incomplete_read& e) {
        EXPECT_EQ(e.partial(), "three");
        EXPECT_EQ(e.expected(), 0u);
        EXPECT_EQ(e.code(), std::errc::no_message);
    }
    EXPECT_TRUE(r.at_eof());
    EXPECT_EQ(r.read(10), "");
    EXPECT_EQ(r.readline(), "");
    peer.join();
}

TEST(BufferedReader, ReadexactlyAcrossReceivesAndAtEnd) {
    auto [a, b] = pair();
    std::thread peer([&s = b] {
        s.sendall("abc");
        std::this_thread::sleep_for(20ms);
        s.sendall("defgh");
        s.close();
    });
    sock::buffered_reader r(a);
    EXPECT_EQ(r.readexactly(5), "abcde");
    std::error_code ec;
    EXPECT_EQ(r.readexactly(5, ec), "fgh");
    EXPECT_EQ(ec, sock::stream_errc::incomplete_read);
    EXPECT_EQ(r.readexactly(0, ec), "");
    EXPECT_FALSE(ec);
    peer.join();
}

TEST(BufferedReader, OverrunLeavesDataForReaduntilAndDropsItForReadline) {
    auto [a, b] = pair();
    b.sendall("0123456789ABCDEF|tail\n");
    sock::buffered_reader r(a, 8);
    EXPECT_THROW(r.readuntil("|"), sock::limit_overrun);
    EXPECT_EQ(r.read(8), "01234567");  // still there
    std::error_code ec;
    EXPECT_EQ(r.readuntil("|", ec), "");
    EXPECT_EQ(ec, sock::stream_errc::limit_overrun);
    EXPECT_EQ(r.buffered().substr(0, 8), "89ABCDEF");  // readuntil keeps the bytes
    EXPECT_EQ(r.readline(ec), "");  // readline drops what it had of the long line
    EXPECT_EQ(ec, std::errc::message_size);
    EXPECT_EQ(r.readline(), "|tail\n");
    EXPECT_THROW(r.readexactly(9), sock::limit_overrun);
    EXPECT_EQ(r.readuntil("", ec), "");
    EXPECT_EQ(ec, std::errc::invalid_argument);
}

TEST(BufferedReader, TimeoutBoundsTheWholeCall) {
    auto [a, b] = pair();
    std::atomic<bool> stop{false};
    std::thread peer([&s = b, &stop] {
        // A byte every 50 ms and never a newline: each receive succeeds quickly, but the
        // call as a whole must give up at the socket's timeout.
        while (!stop) {
            std::error_code ec;
            s.sendall("x", 0, ec);
            if (ec) return;
            std::this_thread::sleep_for(50ms);
        }
    });
    a.settimeout(0.3);
    sock::buffered_reader r(a);
    EXPECT_THROW(r.readline(), sock::timeout);
    EXPECT_EQ(a.gettimeout(), sock::timeout_t(300ms));  // restored
    std::error_code ec;
    r.readuntil("\n", ec);
    EXPECT_EQ(ec, std::errc::timed_out);
    stop = true;
    peer.join();
}

TEST(BufferedWriter, GathersWritesIntoOneSend) {
    auto [a, b] = pair();
    sock::buffered_writer w(a, 64);
    for (int i = 0; i < 10; ++i) w.write("ab");
    EXPECT_EQ(w.buffered().size(), 20u);
    // Nothing went out before flush.
    char c;
    std::error_code ec;
    b.settimeout(0.0);
    b.recv_into(std::span<char>(&c, 1), 0, ec);
    EXPECT_EQ(ec, std::errc::resource_unavailable_try_again);
    w.flush();
    b.settimeout(10s);
    std::string want;
    for (int i = 0; i < 10; ++i) want += "ab";
    EXPECT_EQ(b.recv(100), want);
}

TEST(BufferedWriter, PassingTheBoundFlushesFirstAndBigDataGoesStraightOut) {
    auto [a, b] = pair();
    sock::buffered_writer w(a, 8);
    w.write("12345");
    w.write("678");  // fits exactly
    EXPECT_EQ(w.buffered(), "12345678");
    w.write("9");  // would pass: flushes first
    EXPECT_EQ(w.buffered(), "9");
    w.write(std::string(20, 'z'));  // flushes "9", then sends itself
    EXPECT_EQ(w.buffered(), "");
    sock::buffered_reader r(b);
    EXPECT_EQ(r.readexactly(29), "123456789" + std::string(20, 'z'));
    b.close();
    std::error_code ec;
    w.write("late", ec);
    w.flush(ec);
    EXPECT_TRUE(ec);
    EXPECT_EQ(w.buffered(), "late");  // kept for a retry
    EXPECT_THROW(w.flush(), sock::error);
}

}  // namespace
