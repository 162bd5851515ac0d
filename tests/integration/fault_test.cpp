// Misbehaving clients against greet-server; after each, a normal client is still served.

#include "programs.hpp"

#include <sock/create.hpp>
#include <sock/socket.hpp>

#include <gtest/gtest.h>

#include <string>

namespace {

using namespace greet_test;
using namespace std::chrono_literals;
using namespace std::string_literals;

server start(const std::string& timeout = "5") {
    return start_greet_server({"--host", "127.0.0.1", "--port", "0", "--timeout", timeout});
}

sock::socket connect_to(std::uint16_t port) {
    return sock::create_connection({"127.0.0.1", port}, 10s);
}

/// Everything until the server closes (each wait bounded by the socket's timeout).
std::string read_all(sock::socket& c) {
    std::string all;
    while (all.size() < 1024 * 1024) {
        std::string part = c.recv(64 * 1024);
        if (part.empty()) break;
        all += part;
    }
    return all;
}

void expect_served(const server& s) {
    const auto r = run({bin("greet-client"), "--host", "127.0.0.1", "--port",
                        std::to_string(s.port)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "welcome to server!\n");
}

TEST(GreetServerFaults, SilentClientTimesOutWithoutReply) {
    auto s = start("0.3");
    auto c = connect_to(s.port);
    const std::string me = c.getsockname().to_string();
    EXPECT_EQ(read_all(c), "");  // the server closed without a reply
    EXPECT_EQ(s.process->read_line(stream::err, 10s), me + ": time out");
    expect_served(s);
}

TEST(GreetServerFaults, HelloIsTurnedAway) {
    auto s = start();
    auto c = connect_to(s.port);
    const std::string me = c.getsockname().to_string();
    c.sendall("hello");
    EXPECT_EQ(read_all(c), "please go out!");
    EXPECT_EQ(s.process->read_line(stream::out, 10s), me + ": \"hello\" -> please go out!");
    expect_served(s);
}

TEST(GreetServerFaults, NulBytesAreTurnedAway) {
    auto s = start();
    auto c = connect_to(s.port);
    c.sendall("\0\0\0"s);
    EXPECT_EQ(read_all(c), "please go out!");
    expect_served(s);
}

TEST(GreetServerFaults, OneWithNulIsTurnedAway) {
    auto s = start();
    auto c = connect_to(s.port);
    c.sendall("1\0"s);
    EXPECT_EQ(read_all(c), "please go out!");
    expect_served(s);
}

TEST(GreetServerFaults, HalfCloseWithoutMessageIsTurnedAway) {
    auto s = start();
    auto c = connect_to(s.port);
    c.shutdown(sock::shut::wr);  // the server's recv returns "" at once
    EXPECT_EQ(read_all(c), "please go out!");
    expect_served(s);
}

TEST(GreetServerFaults, TenMegabytesStillGetTheWholeReply) {
    auto s = start();
    auto c = connect_to(s.port);
    // The server reads 1024 bytes of it; the reply must survive the rest.
    c.sendall(std::string(10 * 1024 * 1024, 'x'));
    EXPECT_EQ(read_all(c), "please go out!");
    expect_served(s);
}

TEST(GreetServerFaults, ResetAfterSending) {
    auto s = start();
    {
        auto c = connect_to(s.port);
        c.sendall("1");
        c.setsockopt(sock::opt::linger, sock::opt::linger_t(0s));
    }  // closing with linger 0 sends RST
    expect_served(s);
}

TEST(GreetServerFaults, ResetBeforeSending) {
    auto s = start();
    {
        auto c = connect_to(s.port);
        c.setsockopt(sock::opt::linger, sock::opt::linger_t(0s));
    }
    expect_served(s);
}

TEST(GreetServerFaults, CloseBeforeReadingTheReply) {
    auto s = start();
    {
        auto c = connect_to(s.port);
        c.sendall("1");
    }
    expect_served(s);
}

TEST(GreetServerFaults, ManyFaultsInARow) {
    auto s = start("0.3");
    for (int i = 0; i < 3; ++i) {
        {
            auto c = connect_to(s.port);
            c.sendall("hello");
        }
        {
            auto c = connect_to(s.port);
            c.setsockopt(sock::opt::linger, sock::opt::linger_t(0s));
        }
        {
            auto c = connect_to(s.port);
            EXPECT_EQ(read_all(c), "");
        }
        expect_served(s);
    }
}

}  // namespace
