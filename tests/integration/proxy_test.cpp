// greet-server --proxy-protocol with a client writing real PROXY headers: the reply, the log
// line naming the client the header gave, untrusted peers and bad headers closed unanswered.

#include "programs.hpp"

#include "proxy_headers.hpp"

#include <sock/create.hpp>
#include <sock/socket.hpp>

#include <gtest/gtest.h>

#include <string>

namespace {

using namespace greet_test;
using namespace std::chrono_literals;

/// Connects to greet-server, sends the bytes, returns the reply ("" when closed unanswered).
std::string ask_raw(std::uint16_t port, const std::string& bytes) {
    sock::socket s = sock::create_connection({"127.0.0.1", port}, 10s);
    s.sendall(bytes);
    try {
        std::string reply, part;
        while (!(part = s.recv(1024)).empty()) reply += part;
        return reply;
    } catch (const sock::error& e) {
        if (e.code() == std::errc::connection_reset) return "";
        throw;
    }
}

TEST(GreetProxy, V1AndV2NameTheClientInTheLog) {
    auto s = start_greet_server({"--port", "0", "--host", "127.0.0.1", "--proxy-protocol"});
    EXPECT_EQ(ask_raw(s.port, "PROXY TCP4 203.0.113.7 127.0.0.1 40000 8001\r\n1"),
              "welcome to server!");
    EXPECT_EQ(s.process->read_line(stream::out, 10s),
              "203.0.113.7:40000: \"1\" -> welcome to server!");
    EXPECT_EQ(ask_raw(s.port, test::v2_tcp_crc("2001:db8::5", "::1", 5, 8001) + "2"),
              "please go out!");
    EXPECT_EQ(s.process->read_line(stream::out, 10s),
              "[2001:db8::5]:5: \"2\" -> please go out!");
    // LOCAL: the front door's own connection, as HAProxy's health checks make.
    EXPECT_EQ(ask_raw(s.port, test::v2_local() + "1"), "welcome to server!");
    const auto local = s.process->read_line(stream::out, 10s);
    ASSERT_TRUE(local.has_value());
    EXPECT_EQ(local->rfind("127.0.0.1:", 0), 0u) << *local;
}

TEST(GreetProxy, UntrustedOrMalformedIsClosedUnanswered) {
    auto s = start_greet_server(
        {"--port", "0", "--host", "127.0.0.1", "--proxy-protocol", "--proxy-from", "10.0.0.0/8"});
    EXPECT_EQ(ask_raw(s.port, "PROXY TCP4 203.0.113.7 127.0.0.1 40000 8001\r\n1"), "");
    const auto line = s.process->read_line(stream::err, 10s);
    ASSERT_TRUE(line.has_value());
    EXPECT_EQ(line->rfind("PROXY header from 127.0.0.1:", 0), 0u) << *line;
    EXPECT_NE(line->find("not a trusted front door"), std::string::npos) << *line;

    auto t = start_greet_server({"--port", "0", "--host", "127.0.0.1", "--proxy-protocol"});
    EXPECT_EQ(ask_raw(t.port, "1"), "");  // no header at all
    const auto bad = t.process->read_line(stream::err, 10s);
    ASSERT_TRUE(bad.has_value());
    EXPECT_NE(bad->find(": not a PROXY header; closed"), std::string::npos) << *bad;
}

TEST(GreetProxy, OptionsAreChecked) {
    auto r = run({bin("greet-server"), "--proxy-from", "10.0.0.0/8"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--proxy-from requires --proxy-protocol"), std::string::npos) << r.err;
    r = run({bin("greet-server"), "--proxy-protocol", "--proxy-from", "10.0.0.1/8"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("network 10.0.0.1/8: host bits are set (the network is 10.0.0.0/8)"),
              std::string::npos)
        << r.err;
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
    r = run({bin("greet-server"), "--proxy-protocol", "--udp"});
    EXPECT_EQ(r.exit_code, 2);
}

}  // namespace
