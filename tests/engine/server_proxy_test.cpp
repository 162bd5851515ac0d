// server_config::proxy_protocol: the header is taken off before the handler runs, which learns
// the client from async_socket::getpeername; LOCAL, untrusted peers, malformed, slow and
// missing headers; the payload is never lost.

#include "support.hpp"

#include "proxy_headers.hpp"

#include <sock/proxy_protocol.hpp>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;
using engine_test::connect_to;
using engine_test::server_thread;
using engine_test::test_config;

// Answers the first message with who the handler thinks is talking, to whom, and what it read.
sock::task<> who(sock::async_socket conn) {
    std::error_code ec;
    const auto msg = co_await conn.recv(65536, ec);
    if (ec) co_return;
    co_await conn.sendall(conn.getpeername().to_string() + "|" + conn.getsockname().to_string() +
                              "|" + (conn.proxied() ? "proxied" : "direct") + "|" + msg,
                          ec);
}

sock::server_config proxy_config(std::vector<sock::address> listen = {sock::address("127.0.0.1", 0)}) {
    auto c = test_config(std::move(listen));
    c.proxy_protocol = true;
    return c;
}

// Closed by the server with nothing sent: end of stream, or a reset (unread input).
bool closed_without_reply(sock::socket& s) {
    try {
        return s.recv(1024).empty();
    } catch (const sock::timeout&) {
        return false;
    } catch (const sock::error& e) {
        return e.code() == std::errc::connection_reset;
    }
}

std::string ask_raw(const sock::address& addr, const std::string& bytes) {
    auto s = connect_to(addr);
    s.sendall(bytes);
    return s.recv(65536);
}

TEST(ServerProxy, V1GivesTheClientAndKeepsThePayload) {
    server_thread srv(proxy_config(), who);
    EXPECT_EQ(ask_raw(srv.address(), "PROXY TCP4 203.0.113.7 198.51.100.1 40000 8001\r\nhello"),
              "203.0.113.7:40000|198.51.100.1:8001|proxied|hello");
    EXPECT_EQ(srv->proxy_rejected(), 0u);
}

TEST(ServerProxy, V2WithCrcAndIpv6) {
    server_thread srv(proxy_config(), who);
    EXPECT_EQ(ask_raw(srv.address(), test::v2_tcp_crc("2001:db8::5", "2001:db8::1", 5, 443) + "1"),
              "[2001:db8::5]:5|[2001:db8::1]:443|proxied|1");
    EXPECT_EQ(ask_raw(srv.address(), test::v2_tcp("192.0.2.9", "192.0.2.1", 1, 2) + "x"),
              "192.0.2.9:1|192.0.2.1:2|proxied|x");
}

TEST(ServerProxy, LocalIsServedAsTheFrontDoorItself) {
    server_thread srv(proxy_config(), who);
    auto s = connect_to(srv.address());
    s.sendall(test::v2_local() + "check");
    EXPECT_EQ(s.recv(65536), s.getsockname().to_string() + "|" + srv.address().to_string() +
                                 "|direct|check");
    // v1 UNKNOWN too: the real ends stand.
    auto u = connect_to(srv.address());
    u.sendall("PROXY UNKNOWN\r\nu");
    EXPECT_EQ(u.recv(65536), u.getsockname().to_string() + "|" + srv.address().to_string() +
                                 "|direct|u");
}

TEST(ServerProxy, UntrustedPeerIsClosedWithoutReply) {
    auto c = proxy_config();
    c.proxy_from = {sock::network::parse("10.0.0.0/8")};
    std::mutex m;
    std::vector<std::string> logged;
    c.log = [&](std::string_view line) {
        std::lock_guard lock(m);
        logged.emplace_back(line);
    };
    server_thread srv(std::move(c), who);
    auto s = connect_to(srv.address());
    s.sendall("PROXY TCP4 203.0.113.7 198.51.100.1 40000 8001\r\nhello");
    EXPECT_TRUE(closed_without_reply(s));
    EXPECT_EQ(srv->proxy_rejected(), 1u);
    std::lock_guard lock(m);
    ASSERT_EQ(logged.size(), 1u);
    EXPECT_EQ(logged[0].rfind("PROXY header from 127.0.0.1:", 0), 0u) << logged[0];
    EXPECT_NE(logged[0].find(": not a trusted front door (proxy_from); closed"), std::string::npos)
        << logged[0];
}

TEST(ServerProxy, MalformedHeadersAreClosedWithoutReply) {
    auto c = proxy_config();
    c.log = [](std::string_view) {};
    server_thread srv(std::move(c), who);
    const std::vector<std::string> bad = {
        "1",                                              // no header at all
        "GET / HTTP/1.1\r\n\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n1",              // LF without CR
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n1",        // bad number
        "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n1",            // unknown protocol
        "PROXY UNKNOWN " + std::string(120, 'x'),         // no CRLF within 107 bytes
        test::v2_signature + "\x21\x11\xff\xff",          // longer than the buffer
        test::v2_signature + "\x23\x11\x00\x0c"s,         // unknown command
        test::v2_signature + "\x21\x51\x00\x0c"s,         // unknown family
        test::v2_tcp("1.2.3.4", "5.6.7.8", 1, 2, "\x02\x00\x09" "ab"s) + "1",  // TLV overruns
    };
    for (const auto& bytes : bad) {
        auto s = connect_to(srv.address());
        s.sendall(bytes);
        EXPECT_TRUE(closed_without_reply(s)) << testing::PrintToString(bytes);
    }
    auto crc = test::v2_tcp_crc("1.2.3.4", "5.6.7.8", 1, 2);
    crc[17] = static_cast<char>(crc[17] ^ 1);
    auto s = connect_to(srv.address());
    s.sendall(crc + "1");
    EXPECT_TRUE(closed_without_reply(s));
    EXPECT_EQ(srv->proxy_rejected(), bad.size() + 1);
    // The server goes on serving.
    EXPECT_EQ(ask_raw(srv.address(), "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nok"),
              "1.2.3.4:1|5.6.7.8:2|proxied|ok");
}

TEST(ServerProxy, HeaderArrivingByteByByteIsRead) {
    server_thread srv(proxy_config(), who);
    for (const std::string& header :
         {std::string("PROXY TCP4 203.0.113.7 198.51.100.1 40000 8001\r\n"),
          test::v2_tcp_crc("203.0.113.7", "198.51.100.1", 40000, 8001)}) {
        auto s = connect_to(srv.address());
        s.setsockopt(sock::opt::tcp_nodelay, true);
        for (char c : header) {
            s.sendall(std::string(1, c));
            std::this_thread::sleep_for(1ms);  // separate segments, each its own edge
        }
        std::this_thread::sleep_for(5ms);
        s.sendall("late payload");  // after the header, in its own segment
        EXPECT_EQ(s.recv(65536), "203.0.113.7:40000|198.51.100.1:8001|proxied|late payload");
    }
}

TEST(ServerProxy, NoWholeHeaderWithinTheTimeoutIsClosed) {
    auto c = proxy_config();
    c.proxy_timeout = 200ms;
    c.log = [](std::string_view) {};
    server_thread srv(std::move(c), who);
    auto s = connect_to(srv.address());
    s.sendall("PROXY TCP4 203.0.113.7");  // and then nothing
    EXPECT_TRUE(closed_without_reply(s));
    EXPECT_EQ(srv->proxy_rejected(), 1u);
}

TEST(ServerProxy, PeerShuttingDownMidHeaderIsClosed) {
    auto c = proxy_config();
    c.proxy_timeout = 30s;  // not what ends it
    c.log = [](std::string_view) {};
    server_thread srv(std::move(c), who);
    auto s = connect_to(srv.address());
    s.sendall(test::v2_tcp("1.2.3.4", "5.6.7.8", 1, 2).substr(0, 20));
    s.shutdown(sock::shut::wr);
    EXPECT_TRUE(closed_without_reply(s));
    EXPECT_EQ(srv->proxy_rejected(), 1u);
}

TEST(ServerProxy, UnixPeersAreTrustedByDefault) {
    engine_test::temp_dir dir;
    const auto path = sock::address::unix_path(dir.file("p.sock"));
    server_thread srv(proxy_config({path}), who);
    sock::socket u(sock::family::local);
    u.settimeout(engine_test::client_timeout);
    u.connect(path);
    u.sendall("PROXY TCP6 2001:db8::5 2001:db8::1 5 443\r\nvia unix");
    EXPECT_EQ(u.recv(65536), "[2001:db8::5]:5|[2001:db8::1]:443|proxied|via unix");
}

TEST(ServerProxy, NeedsAStreamServer) {
    auto c = proxy_config();
    c.type = sock::kind::dgram;
    EXPECT_THROW(sock::server(std::move(c), who), std::invalid_argument);
}

}  // namespace
