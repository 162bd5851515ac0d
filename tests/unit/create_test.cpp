// create_connection, create_server, has_dualstack_ipv6 and socketpair (Python 3.8's helpers).

#include "support.hpp"

#include <chrono>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <string>

namespace {

using namespace std::chrono_literals;
using test::capture;

// -- create_connection --------------------------------------------------------------------

/// Which families "localhost" resolves to here (127.0.0.1, ::1 or both).
std::set<sock::family> localhost_families() {
    std::set<sock::family> out;
    for (const auto& r : sock::getaddrinfo("localhost", 1)) out.insert(r.family);
    return out;
}

TEST(CreateConnection, ToLocalhostWhicheverLoopbackListens) {
    const auto families = localhost_families();
    ASSERT_FALSE(families.empty());
    for (sock::family fam : families) {
        if (fam == sock::family::inet6 && !test::ipv6_loopback_available()) continue;
        const char* loopback = fam == sock::family::inet ? "127.0.0.1" : "::1";
        sock::socket l = sock::create_server(sock::address(loopback, 0), {.family = fam});
        const sock::address bound = l.getsockname();

        sock::socket c = sock::create_connection(sock::address("localhost", bound.port()));
        EXPECT_EQ(c.family(), fam);
        EXPECT_EQ(c.type(), sock::kind::stream);
        EXPECT_EQ(c.getpeername(), bound);
        auto [conn, peer] = l.accept();
        EXPECT_EQ(peer, c.getsockname());
        c.sendall("over localhost");
        EXPECT_EQ(conn.recv(100), "over localhost");
    }
}

TEST(CreateConnection, NumericAddress) {
    sock::socket l = test::listener_v4();
    sock::socket c = sock::create_connection(l.getsockname());
    EXPECT_EQ(c.getpeername(), l.getsockname());
    EXPECT_TRUE(test::fd_is_cloexec(c.fileno()));
}

TEST(CreateConnection, DefaultTimeoutIsBlocking) {
    sock::socket l = test::listener_v4();
    sock::socket c = sock::create_connection(l.getsockname());
    EXPECT_EQ(c.gettimeout(), std::nullopt);
    EXPECT_TRUE(c.getblocking());
    EXPECT_FALSE(test::fd_is_nonblocking(c.fileno()));
}

TEST(CreateConnection, TimeoutIsKeptOnSocket) {
    sock::socket l = test::listener_v4();
    sock::socket c = sock::create_connection(l.getsockname(), sock::timeout_t(2500ms));
    EXPECT_EQ(c.gettimeout(), sock::timeout_t(2500ms));
    EXPECT_FALSE(c.getblocking());
    // And it bounds later calls.
    c.settimeout(0.05);
    auto t = capture([&] { c.recv(1); });
    EXPECT_TRUE(t.is<sock::timeout>()) << t.type_name();
}

TEST(CreateConnection, TimeoutFiresOnLaterCalls) {
    sock::socket l = test::listener_v4();
    sock::socket c = sock::create_connection(l.getsockname(), sock::timeout_t(50ms));
    auto t = capture([&] { c.recv(1); });
    ASSERT_TRUE(t.is<sock::timeout>()) << t.type_name() << ": " << t.what;
    EXPECT_EQ(t.code, std::errc::timed_out);
}

TEST(CreateConnection, SourceAddress) {
    sock::socket l = test::listener_v4();
    sock::socket c = sock::create_connection(l.getsockname(), std::nullopt,
                                             sock::address("127.0.0.1", 0));
    EXPECT_EQ(c.getsockname().host(), "127.0.0.1");
    auto [conn, peer] = l.accept();
    EXPECT_EQ(peer, c.getsockname());
}

TEST(CreateConnection, RefusedSingleAddress) {
    sock::socket refusing = test::refusing_v4();
    const sock::address target = refusing.getsockname();
    auto t = capture([&] { sock::create_connection(target); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name() << ": " << t.what;
    EXPECT_EQ(t.code, std::errc::connection_refused);
    EXPECT_NE(t.what.find("Connection refused"), std::string::npos) << t.what;
    EXPECT_NE(t.what.find(target.to_string()), std::string::npos) << t.what;
}

TEST(CreateConnection, RefusedByNameListsEachFailure) {
    sock::socket refusing = test::refusing_v4();
    const std::uint16_t port = refusing.getsockname().port();
    // Every address of localhost fails: 127.0.0.1 refuses; a ::1, if any, has nobody there
    // (the refusing socket holds the port on IPv4 only, so IPv6 may in theory be taken).
    auto t = capture([&] { sock::create_connection(sock::address("localhost", port)); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name() << ": " << t.what;
    EXPECT_NE(t.what.find("Connection refused"), std::string::npos) << t.what;
    EXPECT_NE(t.what.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << t.what;
    const auto families = localhost_families();
    if (families.count(sock::family::inet6) != 0) {
        EXPECT_NE(t.what.find("[::1]:" + std::to_string(port)), std::string::npos) << t.what;
    }
}

// A name with two IPv4 loopback addresses, seen only inside RUN_WITH_HOSTS's child.
constexpr const char* two_address_hosts =
    "127.0.0.1 multi.sock-test\n127.0.0.2 multi.sock-test\n";

/// The two addresses of multi.sock-test, in getaddrinfo's order.
std::pair<std::string, std::string> multi_addresses() {
    auto infos = sock::getaddrinfo("multi.sock-test", 0, sock::family::inet);
    EXPECT_EQ(infos.size(), 2u);
    if (infos.size() != 2) return {};
    return {infos[0].addr.host(), infos[1].addr.host()};
}

TEST(CreateConnection, TriesNextAddressAfterFailure) {
    RUN_WITH_HOSTS(two_address_hosts, [] {
        const auto addresses = multi_addresses();
        const std::string first = addresses.first;
        const std::string second = addresses.second;
        ASSERT_FALSE(first.empty());
        auto [refusing, listener] = test::same_port(first, second);
        listener.listen(4);
        const std::uint16_t port = listener.getsockname().port();

        sock::socket c = sock::create_connection(sock::address("multi.sock-test", port));
        EXPECT_EQ(c.getpeername(), sock::address(second, port));
    });
}

TEST(CreateConnection, EveryAddressFailsListsEachFailure) {
    RUN_WITH_HOSTS(two_address_hosts, [] {
        const auto addresses = multi_addresses();
        const std::string first = addresses.first;
        const std::string second = addresses.second;
        ASSERT_FALSE(first.empty());
        auto [refusing1, refusing2] = test::same_port(first, second);
        const std::uint16_t port = refusing1.getsockname().port();

        const sock::address target("multi.sock-test", port);
        auto t = capture([&] { sock::create_connection(target); });
        ASSERT_TRUE(t.is<sock::error>()) << t.type_name() << ": " << t.what;
        EXPECT_EQ(t.code, std::errc::connection_refused);
        const std::string p = ":" + std::to_string(port);
        EXPECT_NE(t.what.find(first + p), std::string::npos) << t.what;
        EXPECT_NE(t.what.find(second + p), std::string::npos) << t.what;
        std::size_t refusals = 0;
        for (auto at = t.what.find("Connection refused"); at != std::string::npos;
             at = t.what.find("Connection refused", at + 1))
            ++refusals;
        EXPECT_EQ(refusals, 2u) << "each failure with its cause: " << t.what;
    });
}

TEST(CreateConnection, UnknownHostThrowsGaierror) {
    auto t = capture([] { sock::create_connection(sock::address("no-such-host.invalid", 80)); });
    ASSERT_TRUE(t.is<sock::gaierror>()) << t.type_name() << ": " << t.what;
    EXPECT_EQ(t.code.category(), sock::gai_category());
}

TEST(CreateConnection, UnixPath) {
    test::temp_dir dir;
    const auto path = sock::address::unix_path(dir.file("srv.sock"));
    sock::socket l = sock::create_server(path);
    sock::socket c = sock::create_connection(path);
    EXPECT_EQ(c.family(), sock::family::local);
    EXPECT_EQ(c.getpeername(), path);
    auto [conn, peer] = l.accept();
    conn.sendall("unix");
    EXPECT_EQ(c.recv(10), "unix");
}

TEST(CreateConnection, UsesDefaultTimeout) {
    struct restore {
        ~restore() { sock::setdefaulttimeout(std::nullopt); }
    } guard;
    sock::socket l = test::listener_v4();
    sock::setdefaulttimeout(sock::timeout_t(4s));
    sock::socket c = sock::create_connection(l.getsockname());
    EXPECT_EQ(c.gettimeout(), sock::timeout_t(4s));
}

// -- create_server ------------------------------------------------------------------------

TEST(CreateServer, ListensWithReuseAddress) {
    sock::socket s = sock::create_server(sock::address("127.0.0.1", 0));
    EXPECT_EQ(s.family(), sock::family::inet);
    EXPECT_EQ(s.type(), sock::kind::stream);
    EXPECT_TRUE(s.getsockopt(sock::opt::reuse_address));
    EXPECT_EQ(s.getsockopt(SOL_SOCKET, SO_ACCEPTCONN), 1);
    EXPECT_TRUE(test::fd_is_cloexec(s.fileno()));
    const sock::address bound = s.getsockname();
    EXPECT_EQ(bound.host(), "127.0.0.1");
    EXPECT_NE(bound.port(), 0);

    sock::socket c;
    c.connect(bound);
    auto [conn, peer] = s.accept();
    EXPECT_EQ(peer, c.getsockname());
}

TEST(CreateServer, Backlog) {
    sock::socket s = sock::create_server(sock::address("127.0.0.1", 0), {.backlog = 1});
    EXPECT_EQ(s.getsockopt(SOL_SOCKET, SO_ACCEPTCONN), 1);
    sock::socket c;
    c.connect(s.getsockname());
    auto [conn, peer] = s.accept();
    EXPECT_EQ(peer, c.getsockname());
}

TEST(CreateServer, SamePortTwiceWithoutReusePortFails) {
    sock::socket first = sock::create_server(sock::address("127.0.0.1", 0));
    const std::uint16_t port = first.getsockname().port();
    auto t = capture([&] { sock::create_server(sock::address("127.0.0.1", port)); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name() << ": " << t.what;
    EXPECT_EQ(t.code, std::errc::address_in_use);
    EXPECT_EQ(t.what, "bind 127.0.0.1:" + std::to_string(port) + ": Address already in use");
}

TEST(CreateServer, ReusePortLetsTwoServersShareAPort) {
    sock::server_options opts{.reuse_port = true};
    sock::socket first = sock::create_server(sock::address("127.0.0.1", 0), opts);
    const std::uint16_t port = first.getsockname().port();
    sock::socket second;
    ASSERT_NO_THROW(second = sock::create_server(sock::address("127.0.0.1", port), opts));
    EXPECT_EQ(second.getsockname().port(), port);
    EXPECT_TRUE(first.getsockopt(sock::opt::reuse_port));
    EXPECT_TRUE(second.getsockopt(sock::opt::reuse_port));
    EXPECT_EQ(second.getsockopt(SOL_SOCKET, SO_ACCEPTCONN), 1);
}

TEST(CreateServer, Inet6WithoutDualstackIsV6Only) {
    SKIP_WITHOUT_IPV6();
    sock::socket s = sock::create_server(sock::address("::1", 0), {.family = sock::family::inet6});
    EXPECT_EQ(s.family(), sock::family::inet6);
    EXPECT_EQ(s.getsockname().host(), "::1");
    // Python's create_server sets IPV6_V6ONLY unless dualstack_ipv6 is asked for.
    EXPECT_TRUE(s.getsockopt(sock::opt::v6only));
}

TEST(CreateServer, DualstackAcceptsIpv4Client) {
    SKIP_WITHOUT_IPV6();
    if (!sock::has_dualstack_ipv6()) GTEST_SKIP() << "no dual-stack IPv6 here";
    // A v4-mapped loopback address binds only when IPV6_V6ONLY is off, and stays on loopback.
    sock::socket s = sock::create_server(
        sock::address("::ffff:127.0.0.1", 0),
        {.family = sock::family::inet6, .dualstack_ipv6 = true});
    EXPECT_EQ(s.family(), sock::family::inet6);
    EXPECT_FALSE(s.getsockopt(sock::opt::v6only));
    const std::uint16_t port = s.getsockname().port();

    sock::socket c(sock::family::inet, sock::kind::stream);
    c.connect(sock::address("127.0.0.1", port));
    auto [conn, peer] = s.accept();
    EXPECT_EQ(peer.family(), sock::family::inet6);
    EXPECT_EQ(peer.host(), "::ffff:127.0.0.1");
    EXPECT_EQ(peer.port(), c.getsockname().port());
    c.sendall("v4 to v6");
    EXPECT_EQ(conn.recv(100), "v4 to v6");
}

TEST(CreateServer, DualstackNeedsInet6) {
    // Python: ValueError("dualstack_ipv6 requires AF_INET6 family").
    auto t = capture([] {
        sock::create_server(sock::address("127.0.0.1", 0),
                            {.family = sock::family::inet, .dualstack_ipv6 = true});
    });
    EXPECT_TRUE(t.is<std::invalid_argument>()) << t.type_name() << ": " << t.what;
}

TEST(CreateServer, HasDualstackMatchesKernel) {
    // On Linux with IPv6 the answer is yes.
    if (!test::ipv6_loopback_available()) GTEST_SKIP() << "no IPv6";
    EXPECT_TRUE(sock::has_dualstack_ipv6());
}

TEST(CreateServer, UnixPath) {
    test::temp_dir dir;
    const auto path = sock::address::unix_path(dir.file("srv.sock"));
    sock::socket s = sock::create_server(path);  // default family inet is ignored for paths
    EXPECT_EQ(s.family(), sock::family::local);
    EXPECT_EQ(s.type(), sock::kind::stream);
    EXPECT_EQ(s.getsockname(), path);
    EXPECT_FALSE(s.getsockopt(sock::opt::reuse_address)) << "not for Unix paths";
    EXPECT_EQ(s.getsockopt(SOL_SOCKET, SO_ACCEPTCONN), 1);

    sock::socket c(sock::family::local, sock::kind::stream);
    c.connect(path);
    auto [conn, peer] = s.accept();
    c.sendall("hi");
    EXPECT_EQ(conn.recv(10), "hi");
}

TEST(CreateServer, StaleUnixPathIsNotRemoved) {
    test::temp_dir dir;
    const auto path = sock::address::unix_path(dir.file("stale.sock"));
    sock::create_server(path).close();
    ASSERT_TRUE(std::filesystem::is_socket(dir.file("stale.sock")));
    auto t = capture([&] { sock::create_server(path); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name() << ": " << t.what;
    EXPECT_EQ(t.code, std::errc::address_in_use);
    EXPECT_EQ(t.what, "bind " + dir.file("stale.sock") + ": Address already in use");
    EXPECT_TRUE(std::filesystem::is_socket(dir.file("stale.sock")));
}

TEST(CreateServer, AbstractName) {
    const auto name = sock::address::unix_path(test::abstract_name("srv"));
    sock::socket s = sock::create_server(name);
    EXPECT_EQ(s.getsockname(), name);
    sock::socket c = sock::create_connection(name);
    auto [conn, peer] = s.accept();
    conn.sendall("abstract");
    EXPECT_EQ(c.recv(100), "abstract");
}

TEST(CreateServer, ResolvesLocalhost) {
    sock::socket s = sock::create_server(sock::address("localhost", 0));
    EXPECT_EQ(s.getsockname().host(), "127.0.0.1");
}

TEST(CreateServer, UnknownHostThrowsGaierror) {
    auto t = capture([] { sock::create_server(sock::address("no-such-host.invalid", 0)); });
    EXPECT_TRUE(t.is<sock::gaierror>()) << t.type_name() << ": " << t.what;
}

// -- socketpair ---------------------------------------------------------------------------

TEST(Socketpair, DefaultIsUnixStreamBothDirections) {
    auto [a, b] = sock::socketpair();
    EXPECT_EQ(a.family(), sock::family::local);
    EXPECT_EQ(b.family(), sock::family::local);
    EXPECT_EQ(a.type(), sock::kind::stream);
    EXPECT_EQ(b.type(), sock::kind::stream);
    EXPECT_NE(a.fileno(), b.fileno());
    a.sendall("a to b");
    EXPECT_EQ(b.recv(100), "a to b");
    b.sendall("b to a");
    EXPECT_EQ(a.recv(100), "b to a");
    EXPECT_EQ(a.gettimeout(), std::nullopt);
    EXPECT_EQ(b.gettimeout(), std::nullopt);
}

TEST(Socketpair, DgramKeepsBoundaries) {
    auto [a, b] = sock::socketpair(sock::family::local, sock::kind::dgram);
    EXPECT_EQ(a.type(), sock::kind::dgram);
    EXPECT_EQ(b.type(), sock::kind::dgram);
    a.send("ab");
    a.send("cd");
    EXPECT_EQ(b.recv(100), "ab");
    EXPECT_EQ(b.recv(100), "cd");
    b.send("back");
    EXPECT_EQ(a.recv(100), "back");
}

TEST(Socketpair, Seqpacket) {
    auto [a, b] = sock::socketpair(sock::family::local, sock::kind::seqpacket);
    EXPECT_EQ(a.type(), sock::kind::seqpacket);
    a.send("one");
    a.send("two");
    EXPECT_EQ(b.recv(100), "one");
    EXPECT_EQ(b.recv(100), "two");
}

TEST(Socketpair, CloseOneEndIsEofOnOther) {
    auto [a, b] = sock::socketpair();
    b.close();
    EXPECT_EQ(a.recv(10), "");
}

}  // namespace
