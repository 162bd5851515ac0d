// Blocking, non-blocking and timeout modes (Python's settimeout / setblocking).
// Timeouts are asserted to fire (sock::timeout is thrown), never measured.

#include "support.hpp"

#include <chrono>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using test::capture;

constexpr double short_timeout = 0.05;  // seconds; only ever waited out, never measured

bool would_block(std::error_code ec) {
    return ec == std::errc::resource_unavailable_try_again ||
           ec == std::errc::operation_would_block;
}

// -- the three modes ----------------------------------------------------------------------

TEST(Timeout, NewSocketBlocks) {
    sock::socket s;
    EXPECT_EQ(s.gettimeout(), std::nullopt);
    EXPECT_TRUE(s.getblocking());
    EXPECT_FALSE(test::fd_is_nonblocking(s.fileno()));
}

TEST(Timeout, SettimeoutSecondsAsDouble) {
    sock::socket s;
    s.settimeout(5.0);
    EXPECT_EQ(s.gettimeout(), sock::timeout_t(5s));
    EXPECT_FALSE(s.getblocking());
    EXPECT_TRUE(test::fd_is_nonblocking(s.fileno()));
    s.settimeout(0.25);
    EXPECT_EQ(s.gettimeout(), sock::timeout_t(250ms));
}

TEST(Timeout, SettimeoutDuration) {
    sock::socket s;
    s.settimeout(sock::timeout_t(1500ms));
    EXPECT_EQ(s.gettimeout(), sock::timeout_t(1500ms));
    EXPECT_FALSE(s.getblocking());
}

TEST(Timeout, SettimeoutNulloptBlocks) {
    sock::socket s;
    s.settimeout(3.0);
    s.settimeout(std::nullopt);
    EXPECT_EQ(s.gettimeout(), std::nullopt);
    EXPECT_TRUE(s.getblocking());
    EXPECT_FALSE(test::fd_is_nonblocking(s.fileno()));
}

TEST(Timeout, SettimeoutZeroIsNonBlocking) {
    sock::socket s;
    s.settimeout(0.0);
    EXPECT_EQ(s.gettimeout(), sock::timeout_t(0ns));
    EXPECT_FALSE(s.getblocking());
    EXPECT_TRUE(test::fd_is_nonblocking(s.fileno()));
}

TEST(Timeout, SetblockingMapsToTimeout) {
    sock::socket s;
    s.setblocking(false);
    EXPECT_EQ(s.gettimeout(), sock::timeout_t(0ns));
    EXPECT_FALSE(s.getblocking());
    EXPECT_TRUE(test::fd_is_nonblocking(s.fileno()));
    s.setblocking(true);
    EXPECT_EQ(s.gettimeout(), std::nullopt);
    EXPECT_TRUE(s.getblocking());
    EXPECT_FALSE(test::fd_is_nonblocking(s.fileno()));
}

TEST(Timeout, NegativeThrowsInvalidArgument) {
    sock::socket s;
    s.settimeout(2.0);
    auto t = capture([&] { s.settimeout(-1.0); });
    EXPECT_TRUE(t.is<std::invalid_argument>()) << t.type_name();
    auto d = capture([&] { s.settimeout(sock::timeout_t(-1ns)); });
    EXPECT_TRUE(d.is<std::invalid_argument>()) << d.type_name();
    EXPECT_EQ(s.gettimeout(), sock::timeout_t(2s)) << "a rejected timeout changes nothing";
}

// -- non-blocking: EAGAIN is an error, not a timeout ------------------------------------------

TEST(NonBlocking, RecvOnEmptySocketIsWouldBlockNotTimeout) {
    auto [a, b] = sock::socketpair();
    b.setblocking(false);
    auto t = capture([&b = b] { b.recv(10); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name() << ": " << t.what;
    EXPECT_TRUE(would_block(t.code)) << t.code.message();
    EXPECT_NE(t.code, std::errc::timed_out);
    EXPECT_TRUE(test::starts_with(t.what, "recv")) << t.what;

    std::error_code ec;
    EXPECT_EQ(b.recv(10, 0, ec), "");
    EXPECT_TRUE(would_block(ec)) << ec.message();

    a.sendall("now");
    EXPECT_EQ(b.recv(10), "now");
}

TEST(NonBlocking, AcceptWithoutClientIsWouldBlock) {
    sock::socket l = test::listener_v4();
    l.settimeout(0.0);
    auto t = capture([&] { l.accept(); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name() << ": " << t.what;
    EXPECT_TRUE(would_block(t.code)) << t.code.message();
}

TEST(NonBlocking, AcceptedSocketDoesNotInheritNonBlockingFlagSilently) {
    sock::socket l = test::listener_v4();
    l.setblocking(false);
    sock::socket c;
    c.connect(l.getsockname());
    auto [conn, peer] = l.accept();
    // Whatever timeout the accepted socket reports, the descriptor must agree with it.
    EXPECT_EQ(test::fd_is_nonblocking(conn.fileno()), !conn.getblocking());
    EXPECT_EQ(peer, c.getsockname());
}

// -- positive timeouts fire -------------------------------------------------------------------

TEST(Timeout, RecvOnSilentPeerThrowsTimeout) {
    auto [client, server] = test::connected_tcp_v4();
    server.settimeout(short_timeout);
    auto t = capture([&s = server] { s.recv(10); });
    ASSERT_TRUE(t.is<sock::timeout>()) << t.type_name() << ": " << t.what;
    EXPECT_EQ(t.code, std::errc::timed_out);
    EXPECT_TRUE(test::starts_with(t.what, "recv")) << t.what;
    EXPECT_TRUE(test::ends_with(t.what, ": timed out")) << t.what;

    // The socket is still usable afterwards.
    client.sendall("late");
    server.settimeout(30.0);
    EXPECT_EQ(server.recv(10), "late");
}

TEST(Timeout, RecvErrorCodeFormReportsTimedOut) {
    auto [a, b] = sock::socketpair();
    b.settimeout(short_timeout);
    std::error_code ec;
    std::string got = "x";
    EXPECT_NO_THROW(got = b.recv(10, 0, ec));
    EXPECT_EQ(ec, std::errc::timed_out);
    EXPECT_EQ(ec, sock::timeout_error());
    EXPECT_EQ(got, "");
}

TEST(Timeout, RecvIntoAndRecvfromTimeOut) {
    auto [a, b] = sock::socketpair(sock::family::local, sock::kind::dgram);
    b.settimeout(short_timeout);
    char buf[8];
    auto into = capture([&b = b, &buf] { b.recv_into(std::span<char>(buf)); });
    EXPECT_TRUE(into.is<sock::timeout>()) << into.type_name();
    auto from = capture([&b = b] { b.recvfrom(8); });
    EXPECT_TRUE(from.is<sock::timeout>()) << from.type_name();
}

TEST(Timeout, AcceptWithoutClientThrowsTimeout) {
    sock::socket l = test::listener_v4();
    l.settimeout(short_timeout);
    auto t = capture([&] { l.accept(); });
    ASSERT_TRUE(t.is<sock::timeout>()) << t.type_name() << ": " << t.what;
    EXPECT_EQ(t.code, std::errc::timed_out);
    EXPECT_TRUE(test::starts_with(t.what, "accept")) << t.what;
    EXPECT_TRUE(test::ends_with(t.what, "timed out")) << t.what;
}

TEST(Timeout, DataWithinTimeoutIsReceived) {
    auto [a, b] = sock::socketpair();
    b.settimeout(30.0);
    a.sendall("prompt");
    EXPECT_EQ(b.recv(100), "prompt");
    auto reader = std::async(std::launch::async, [&s = b] { return s.recv(100); });
    a.sendall("later");
    EXPECT_EQ(reader.get(), "later");
}

TEST(Timeout, AcceptAndConnectWithinTimeout) {
    sock::socket l = test::listener_v4();
    l.settimeout(30.0);
    sock::socket c;
    c.settimeout(30.0);
    c.connect(l.getsockname());
    auto [conn, peer] = l.accept();
    EXPECT_EQ(peer, c.getsockname());
    conn.sendall("ok");
    EXPECT_EQ(c.recv(10), "ok");
}

TEST(Timeout, ConnectRefusedWithTimeoutIsPlainError) {
    sock::socket refusing = test::refusing_v4();
    const std::uint16_t port = refusing.getsockname().port();
    sock::socket c;
    c.settimeout(30.0);
    auto t = capture([&] { c.connect(sock::address("127.0.0.1", port)); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name() << ": " << t.what;
    EXPECT_EQ(t.code, std::errc::connection_refused);
    EXPECT_EQ(t.what, "connect 127.0.0.1:" + std::to_string(port) + ": Connection refused");

    // A failed connect leaves a socket unusable for another try (as in C and Python): fresh one.
    sock::socket again;
    again.settimeout(30.0);
    EXPECT_EQ(again.connect_ex(sock::address("127.0.0.1", port)), std::errc::connection_refused);
}

TEST(Timeout, ConnectToFullBacklogTimesOut) {
    // Linux drops SYNs while a listener's accept queue is full, so connect waits.
    sock::socket l = test::listener_v4(0);
    std::vector<sock::socket> queued;
    bool timed_out = false;
    for (int i = 0; i < 16 && !timed_out; ++i) {
        sock::socket c;
        c.settimeout(0.2);
        auto t = capture([&] { c.connect(l.getsockname()); });
        if (t.type == nullptr) {
            queued.push_back(std::move(c));
            continue;
        }
        ASSERT_TRUE(t.is<sock::timeout>()) << t.type_name() << ": " << t.what;
        EXPECT_EQ(t.code, std::errc::timed_out);
        timed_out = true;
    }
    EXPECT_TRUE(timed_out) << queued.size() << " connects succeeded without accept";
}

// -- sendall under a timeout --------------------------------------------------------------

TEST(Timeout, SendallToPeerThatNeverReadsThrowsTimeout) {
    auto [a, b] = sock::socketpair();
    a.setsockopt(sock::opt::send_buffer_size, 4096);
    b.setsockopt(sock::opt::receive_buffer_size, 4096);
    a.settimeout(0.1);
    auto t = capture([&a = a] { a.sendall(test::pattern(16u << 20)); });
    ASSERT_TRUE(t.is<sock::timeout>()) << t.type_name() << ": " << t.what;
    EXPECT_EQ(t.code, std::errc::timed_out);
    EXPECT_TRUE(test::starts_with(t.what, "sendall") || test::starts_with(t.what, "send"))
        << t.what;
}

TEST(Timeout, SendallErrorCodeFormReportsProgress) {
    auto [client, server] = test::connected_tcp_v4();
    client.setsockopt(sock::opt::send_buffer_size, 4096);
    server.setsockopt(sock::opt::receive_buffer_size, 4096);
    client.settimeout(0.1);
    const std::string data = test::pattern(16u << 20);
    std::error_code ec;
    std::size_t sent = 0;
    EXPECT_NO_THROW(sent = client.sendall(data, 0, ec));
    EXPECT_EQ(ec, std::errc::timed_out);
    EXPECT_GT(sent, 0u);
    EXPECT_LT(sent, data.size());

    // Exactly `sent` bytes went out: the peer reads them and nothing more.
    client.shutdown(sock::shut::wr);
    server.settimeout(30.0);
    std::string got;
    for (std::string chunk = server.recv(65536); !chunk.empty(); chunk = server.recv(65536))
        got += chunk;
    ASSERT_EQ(got.size(), sent);
    EXPECT_TRUE(got == data.substr(0, sent));
}

TEST(Timeout, SendWithTimeoutWhenBufferFullThrowsTimeout) {
    auto [a, b] = sock::socketpair();
    a.setsockopt(sock::opt::send_buffer_size, 4096);
    a.settimeout(0.05);
    const std::string chunk = test::pattern(65536);
    std::error_code ec;
    for (int i = 0; i < 10000 && !ec; ++i) a.send(chunk, 0, ec);
    EXPECT_EQ(ec, std::errc::timed_out);
}

// -- the default timeout ------------------------------------------------------------------

struct default_timeout_guard {
    ~default_timeout_guard() { sock::setdefaulttimeout(std::nullopt); }
};

TEST(DefaultTimeout, StartsAsNullopt) {
    EXPECT_EQ(sock::getdefaulttimeout(), std::nullopt);
}

TEST(DefaultTimeout, AppliesToNewSockets) {
    default_timeout_guard guard;
    sock::socket before;
    sock::setdefaulttimeout(sock::timeout_t(3s));
    EXPECT_EQ(sock::getdefaulttimeout(), sock::timeout_t(3s));
    sock::socket after;
    EXPECT_EQ(after.gettimeout(), sock::timeout_t(3s));
    EXPECT_FALSE(after.getblocking());
    EXPECT_TRUE(test::fd_is_nonblocking(after.fileno()));
    EXPECT_EQ(before.gettimeout(), std::nullopt) << "existing sockets keep their timeout";

    auto [a, b] = sock::socketpair();
    EXPECT_EQ(a.gettimeout(), sock::timeout_t(3s));
    EXPECT_EQ(b.gettimeout(), sock::timeout_t(3s));

    sock::setdefaulttimeout(std::nullopt);
    EXPECT_EQ(sock::getdefaulttimeout(), std::nullopt);
    sock::socket blocking;
    EXPECT_EQ(blocking.gettimeout(), std::nullopt);
    EXPECT_FALSE(test::fd_is_nonblocking(blocking.fileno()));
}

TEST(DefaultTimeout, ZeroMakesNewSocketsNonBlocking) {
    default_timeout_guard guard;
    sock::setdefaulttimeout(sock::timeout_t(0ns));
    sock::socket s;
    EXPECT_EQ(s.gettimeout(), sock::timeout_t(0ns));
    EXPECT_FALSE(s.getblocking());
}

TEST(DefaultTimeout, FiresOnNewSockets) {
    default_timeout_guard guard;
    sock::setdefaulttimeout(sock::timeout_t(50ms));
    sock::socket l = test::listener_v4();
    auto t = capture([&] { l.accept(); });
    EXPECT_TRUE(t.is<sock::timeout>()) << t.type_name() << ": " << t.what;
}

}  // namespace
