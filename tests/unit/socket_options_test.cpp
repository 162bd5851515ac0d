// Socket options: the typed ones in sock::opt, and raw setsockopt / getsockopt.
// Every value set is read back both through the library and through the C API.

#include "support.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>

namespace {

using namespace std::chrono_literals;
using test::capture;

int kernel_int(const sock::socket& s, int level, int name) {
    int value = -1;
    ::socklen_t len = sizeof value;
    EXPECT_EQ(::getsockopt(s.fileno(), level, name, &value, &len), 0);
    return value;
}

void expect_bool_option(sock::socket& s, const sock::opt::option<bool>& o) {
    s.setsockopt(o, true);
    EXPECT_TRUE(s.getsockopt(o));
    EXPECT_NE(kernel_int(s, o.level, o.name), 0);
    s.setsockopt(o, false);
    EXPECT_FALSE(s.getsockopt(o));
    EXPECT_EQ(kernel_int(s, o.level, o.name), 0);
}

TEST(Options, ReuseAddress) {
    sock::socket s;
    EXPECT_FALSE(s.getsockopt(sock::opt::reuse_address)) << "off by default, as in Python";
    expect_bool_option(s, sock::opt::reuse_address);
}

TEST(Options, ReusePort) {
    sock::socket s;
    EXPECT_FALSE(s.getsockopt(sock::opt::reuse_port));
    expect_bool_option(s, sock::opt::reuse_port);
}

TEST(Options, TcpNodelay) {
    sock::socket s(sock::family::inet, sock::kind::stream);
    EXPECT_FALSE(s.getsockopt(sock::opt::tcp_nodelay));
    expect_bool_option(s, sock::opt::tcp_nodelay);
}

TEST(Options, TcpNodelayOnConnectedSocket) {
    auto [client, server] = test::connected_tcp_v4();
    client.setsockopt(sock::opt::tcp_nodelay, true);
    EXPECT_TRUE(client.getsockopt(sock::opt::tcp_nodelay));
    EXPECT_EQ(kernel_int(client, IPPROTO_TCP, TCP_NODELAY), 1);
}

TEST(Options, Keepalive) {
    sock::socket s(sock::family::inet, sock::kind::stream);
    EXPECT_FALSE(s.getsockopt(sock::opt::keepalive));
    expect_bool_option(s, sock::opt::keepalive);
}

TEST(Options, Broadcast) {
    sock::socket s(sock::family::inet, sock::kind::dgram);
    expect_bool_option(s, sock::opt::broadcast);
}

TEST(Options, V6only) {
    SKIP_WITHOUT_IPV6();
    sock::socket s(sock::family::inet6, sock::kind::stream);
    expect_bool_option(s, sock::opt::v6only);
}

TEST(Options, BufferSizes) {
    sock::socket s(sock::family::inet, sock::kind::stream);
    s.setsockopt(sock::opt::receive_buffer_size, 32768);
    s.setsockopt(sock::opt::send_buffer_size, 24576);
    // Linux doubles the requested size to account for bookkeeping.
    EXPECT_EQ(s.getsockopt(sock::opt::receive_buffer_size), 65536);
    EXPECT_EQ(s.getsockopt(sock::opt::send_buffer_size), 49152);
    EXPECT_EQ(kernel_int(s, SOL_SOCKET, SO_RCVBUF), 65536);
    EXPECT_EQ(kernel_int(s, SOL_SOCKET, SO_SNDBUF), 49152);
}

TEST(Options, LingerDefaultsOff) {
    sock::socket s;
    EXPECT_EQ(s.getsockopt(sock::opt::linger), std::nullopt);
}

TEST(Options, LingerRoundTrip) {
    sock::socket s;
    s.setsockopt(sock::opt::linger, sock::opt::linger_t(5s));
    EXPECT_EQ(s.getsockopt(sock::opt::linger), sock::opt::linger_t(5s));
    ::linger raw{};
    ::socklen_t len = sizeof raw;
    ASSERT_EQ(::getsockopt(s.fileno(), SOL_SOCKET, SO_LINGER, &raw, &len), 0);
    EXPECT_EQ(raw.l_onoff, 1);
    EXPECT_EQ(raw.l_linger, 5);

    s.setsockopt(sock::opt::linger, sock::opt::linger_t(0s));
    EXPECT_EQ(s.getsockopt(sock::opt::linger), sock::opt::linger_t(0s));

    s.setsockopt(sock::opt::linger, sock::opt::linger_t(std::nullopt));
    EXPECT_EQ(s.getsockopt(sock::opt::linger), std::nullopt);
    len = sizeof raw;
    ASSERT_EQ(::getsockopt(s.fileno(), SOL_SOCKET, SO_LINGER, &raw, &len), 0);
    EXPECT_EQ(raw.l_onoff, 0);
}

TEST(Options, LingerZeroResetsConnection) {
    auto [client, server] = test::connected_tcp_v4();
    client.setsockopt(sock::opt::linger, sock::opt::linger_t(0s));
    client.close();
    std::error_code ec;
    server.recv(10, 0, ec);
    EXPECT_EQ(ec, std::errc::connection_reset);
}

TEST(Options, PendingErrorIsZero) {
    sock::socket s;
    EXPECT_EQ(s.getsockopt(sock::opt::error), 0);
}

// -- raw forms ----------------------------------------------------------------------------

TEST(RawOptions, IntSetAndGet) {
    sock::socket s;
    s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1);
    EXPECT_EQ(s.getsockopt(SOL_SOCKET, SO_REUSEADDR), 1);
    EXPECT_TRUE(s.getsockopt(sock::opt::reuse_address));
    s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 0);
    EXPECT_EQ(s.getsockopt(SOL_SOCKET, SO_REUSEADDR), 0);
    EXPECT_EQ(s.getsockopt(SOL_SOCKET, SO_TYPE), SOCK_STREAM);
}

TEST(RawOptions, BufferSetAndGet) {
    sock::socket s;
    const ::linger in{1, 7};
    s.setsockopt(SOL_SOCKET, SO_LINGER, &in, sizeof in);
    ::linger out{};
    ::socklen_t len = sizeof out + 8;  // larger than needed: the kernel says what it wrote
    unsigned char buf[sizeof(::linger) + 8] = {};
    s.getsockopt(SOL_SOCKET, SO_LINGER, buf, len);
    ASSERT_EQ(len, sizeof(::linger));
    std::memcpy(&out, buf, sizeof out);
    EXPECT_EQ(out.l_onoff, 1);
    EXPECT_EQ(out.l_linger, 7);
    EXPECT_EQ(s.getsockopt(sock::opt::linger), sock::opt::linger_t(7s));
}

TEST(RawOptions, ErrorCodeForms) {
    sock::socket s;
    int v = 1;
    std::error_code ec = std::make_error_code(std::errc::io_error);
    s.setsockopt(SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v, ec);
    EXPECT_FALSE(ec) << ec.message();
    int out = 0;
    ::socklen_t len = sizeof out;
    ec = std::make_error_code(std::errc::io_error);
    s.getsockopt(SOL_SOCKET, SO_KEEPALIVE, &out, len, ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(out, 1);

    s.setsockopt(SOL_SOCKET, 0x7fff, &v, sizeof v, ec);
    EXPECT_EQ(ec, std::errc::no_protocol_option);
    ec.clear();
    len = sizeof out;
    s.getsockopt(SOL_SOCKET, 0x7fff, &out, len, ec);
    EXPECT_EQ(ec, std::errc::no_protocol_option);
}

TEST(RawOptions, UnknownOptionThrowsSockError) {
    sock::socket s;
    auto set = capture([&] { s.setsockopt(SOL_SOCKET, 0x7fff, 1); });
    ASSERT_TRUE(set.is<sock::error>()) << set.type_name();
    EXPECT_EQ(set.code, std::errc::no_protocol_option);
    EXPECT_TRUE(test::starts_with(set.what, "setsockopt")) << set.what;

    auto get = capture([&] { s.getsockopt(SOL_SOCKET, 0x7fff); });
    ASSERT_TRUE(get.is<sock::error>()) << get.type_name();
    EXPECT_EQ(get.code, std::errc::no_protocol_option);
    EXPECT_TRUE(test::starts_with(get.what, "getsockopt")) << get.what;
}

TEST(RawOptions, TcpOptionOnUnixSocketFails) {
    sock::socket s(sock::family::local, sock::kind::stream);
    auto t = capture([&] { s.setsockopt(sock::opt::tcp_nodelay, true); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name();
    EXPECT_TRUE(t.code == std::errc::operation_not_supported ||
                t.code == std::errc::no_protocol_option)
        << t.code.message();
}

}  // namespace
