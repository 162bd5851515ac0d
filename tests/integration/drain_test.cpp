// The end of a greet-server connection: a client that sends more than its message, at any
// moment before the server closes, still gets the whole reply and then a clean end of stream
// (FIN), never a reset; and a client that keeps sending cannot keep its connection.

#include "programs.hpp"

#include <sock/create.hpp>
#include <sock/error.hpp>
#include <sock/options.hpp>
#include <sock/socket.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace greet_test;
using namespace std::chrono_literals;

server start() {
    return start_greet_server({"--host", "127.0.0.1", "--port", "0", "--quiet", "--threads", "1"});
}

sock::socket connect_to(std::uint16_t port) {
    auto c = sock::create_connection({"127.0.0.1", port}, 10s);
    c.setsockopt(sock::opt::tcp_nodelay, true);  // each sendall its own segment, at once
    c.settimeout(10.0);
    return c;
}

/// Reads to the end of stream; a reset fails the test (recv throws, which is not "").
std::string read_to_eof(sock::socket& c) {
    std::string all;
    for (std::string part; !(part = c.recv(64 * 1024)).empty();) all += part;
    return all;
}

/// What a client that has read its reply sees next: "" for a clean end of stream, else what
/// came instead (the error of a reset).
std::string after_reply(sock::socket& c) {
    try {
        const std::string more = c.recv(1024);
        return more.empty() ? "" : "more bytes: " + more;
    } catch (const sock::error& e) {
        return e.what();
    }
}

/// The reply the message earns, depending on whether the server's first read took the
/// extra bytes with it.
bool whole_reply(const std::string& reply) {
    return reply == "welcome to server!" || reply == "please go out!";
}

TEST(GreetServerEnd, ExtraBytesRightAfterTheMessage) {
    auto s = start();
    for (int i = 0; i < 200; ++i) {
        auto c = connect_to(s.port);
        c.sendall("1");
        c.sendall("and more");
        std::string reply;
        EXPECT_NO_THROW(reply = read_to_eof(c)) << "round " << i;
        EXPECT_TRUE(whole_reply(reply)) << "round " << i << ": " << reply;
    }
}

TEST(GreetServerEnd, ExtraBytesAfterAShortPause) {
    auto s = start();
    // Pauses from 0 to 2 ms: the extra bytes land before the reply, between the reply and the
    // close, or after it; every case must end in the reply and a FIN.
    for (int i = 0; i < 200; ++i) {
        auto c = connect_to(s.port);
        c.sendall("1");
        std::this_thread::sleep_for(std::chrono::microseconds(i * 10));
        std::error_code ec;
        c.sendall("and more", 0, ec);  // after the server closed: refused, and that is fine
        std::string reply;
        EXPECT_NO_THROW(reply = read_to_eof(c)) << "round " << i;
        EXPECT_TRUE(whole_reply(reply)) << "round " << i << ": " << reply;
    }
}

TEST(GreetServerEnd, ExtraBytesWhileTheServerIsBusy) {
    // Many clients at once keep the server's one loop busy, so that the extra bytes of many
    // arrive while it is between reading their message and closing: the narrow moment a
    // single client rarely hits.
    auto s = start();
    for (int round = 0; round < 20; ++round) {
        std::vector<sock::socket> clients;
        for (int i = 0; i < 64; ++i) clients.push_back(connect_to(s.port));
        for (auto& c : clients) c.sendall("1");
        for (auto& c : clients) {
            std::error_code ec;
            c.sendall("and more", 0, ec);  // after the server closed: refused, and that is fine
        }
        for (auto& c : clients) {
            std::string reply;
            EXPECT_NO_THROW(reply = read_to_eof(c)) << "round " << round;
            EXPECT_TRUE(whole_reply(reply)) << "round " << round << ": " << reply;
        }
    }
}

TEST(GreetServerEnd, ExtraBytesBetweenTheReplyAndTheClose) {
    // The narrow moment made wide: the server logs each client to stdout after replying and
    // before closing, and a stdout pipe nobody reads fills up, so the write blocks right
    // there. Clients greet one after another, each sending more once it has its reply,
    // until one gets no reply: the server is then stuck logging the one before, whose extra
    // bytes wait unread. Reading the pipe lets it go on to close that connection.
    auto s = start_greet_server({"--host", "127.0.0.1", "--port", "0", "--threads", "1"});
    std::optional<sock::socket> previous;
    bool stuck = false;
    for (int i = 0; i < 20000 && !stuck; ++i) {
        auto c = connect_to(s.port);
        c.settimeout(0.5);
        c.sendall("1");
        std::string reply;
        try {
            reply = c.recv(1024);
        } catch (const sock::timeout&) {
            stuck = true;  // the server is blocked logging `previous`
            break;
        }
        ASSERT_EQ(reply, "welcome to server!");
        c.sendall("and more");
        if (previous) {
            // The server went on to c, so it has ended `previous`: with a FIN.
            EXPECT_EQ(after_reply(*previous), "") << "client " << i - 1;
        }
        previous = std::move(c);
    }
    ASSERT_TRUE(stuck) << "stdout never filled";
    ASSERT_TRUE(previous);
    while (s.process->read_line(stream::out, 200ms)) {}  // let the server write and go on
    previous->settimeout(10.0);
    EXPECT_EQ(after_reply(*previous), "");
}

TEST(GreetServerEnd, ManyExtraBytesAfterAPause) {
    auto s = start();
    for (int i = 0; i < 20; ++i) {
        auto c = connect_to(s.port);
        c.sendall("1");
        std::this_thread::sleep_for(std::chrono::milliseconds(i % 4));
        std::error_code ec;
        c.sendall(std::string(256 * 1024, 'x'), 0, ec);
        std::string reply;
        EXPECT_NO_THROW(reply = read_to_eof(c)) << "round " << i;
        EXPECT_TRUE(whole_reply(reply)) << "round " << i << ": " << reply;
    }
}

TEST(GreetServerEnd, DrippingClientIsCutOff) {
    auto s = start();
    auto c = connect_to(s.port);
    // More than a message, so the server drains; then a byte every 0.7 s, which would renew
    // a timeout that bounded each read alone.
    c.sendall(std::string(2000, 'x'));
    EXPECT_EQ(read_to_eof(c), "please go out!");  // the FIN comes before the drain
    bool cut_off = false;
    for (int i = 0; i < 28 && !cut_off; ++i) {  // 28 drips: about 20 s
        std::this_thread::sleep_for(700ms);
        std::error_code ec;
        c.send("x", 0, ec);  // once the server has closed: reset, then EPIPE
        cut_off = static_cast<bool>(ec);
    }
    EXPECT_TRUE(cut_off) << "the server still took bytes after 20 s of dripping";
    {
        const auto r = run({bin("greet-client"), "--host", "127.0.0.1", "--port",
                            std::to_string(s.port)});
        EXPECT_EQ(r.out, "welcome to server!\n") << r.err;
    }
}

}  // namespace
