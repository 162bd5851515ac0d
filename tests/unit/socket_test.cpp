// The seed's six server steps (socket, bind, listen, accept, send/recv, close) and four client
// steps (socket, connect, send/recv, close) for every family, plus the stream semantics of
// recv, recv_into, sendall and shutdown, refused connects, SIGPIPE and raw sockets.

#include "support.hpp"

#include <grp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <future>
#include <optional>
#include <string>
#include <vector>

namespace {

using test::capture;

enum class where { inet, inet6, unix_path, unix_abstract };

const char* where_text(where w) {
    switch (w) {
    case where::inet: return "Inet";
    case where::inet6: return "Inet6";
    case where::unix_path: return "UnixPath";
    case where::unix_abstract: return "UnixAbstract";
    }
    return "Unknown";
}
void PrintTo(where w, std::ostream* os) { *os << where_text(w); }
std::string where_name(const ::testing::TestParamInfo<where>& info) {
    return where_text(info.param);
}

/// Per family: the family, and fresh local addresses for a server and a client.
class Families : public ::testing::TestWithParam<where> {
protected:
    void SetUp() override {
        if (GetParam() == where::inet6) SKIP_WITHOUT_IPV6();
    }

    sock::family fam() const {
        switch (GetParam()) {
        case where::inet: return sock::family::inet;
        case where::inet6: return sock::family::inet6;
        default: return sock::family::local;
        }
    }
    bool is_unix() const { return fam() == sock::family::local; }

    sock::address local(std::string_view tag) {
        switch (GetParam()) {
        case where::inet: return sock::address("127.0.0.1", 0);
        case where::inet6: return sock::address("::1", 0);
        case where::unix_path: return sock::address::unix_path(dir_.file(tag));
        case where::unix_abstract: return sock::address::unix_path(test::abstract_name(tag));
        }
        return {};
    }

    /// What getsockname must say after binding `asked`.
    void expect_bound_as(const sock::address& bound, const sock::address& asked) {
        EXPECT_EQ(bound.family(), fam());
        if (is_unix()) {
            EXPECT_EQ(bound, asked);
            EXPECT_EQ(bound.to_string(), asked.to_string());
        } else {
            EXPECT_EQ(bound.host(), asked.host());
            EXPECT_NE(bound.port(), 0);
        }
    }

    test::temp_dir dir_;
};

INSTANTIATE_TEST_SUITE_P(AllFamilies, Families,
                         ::testing::Values(where::inet, where::inet6, where::unix_path,
                                           where::unix_abstract),
                         where_name);

TEST_P(Families, StreamServerAndClientSteps) {
    // Server step 1: create the socket.
    sock::socket server(fam(), sock::kind::stream);
    ASSERT_TRUE(server);
    EXPECT_GE(server.fileno(), 0);
    EXPECT_EQ(server.family(), fam());
    EXPECT_EQ(server.type(), sock::kind::stream);

    // Step 2: bind. Step 3: listen.
    const sock::address asked = local("server");
    server.bind(asked);
    const sock::address bound = server.getsockname();
    expect_bound_as(bound, asked);
    server.listen(5);

    // Client steps 1 and 2: create, connect. Unix clients bind a name so the peer has one.
    sock::socket client(fam(), sock::kind::stream);
    if (is_unix()) client.bind(local("client"));
    client.connect(bound);
    EXPECT_EQ(client.getpeername(), bound);

    // Server step 4: accept returns the connection and the client's address.
    auto [conn, peer] = server.accept();
    ASSERT_TRUE(conn);
    EXPECT_NE(conn.fileno(), server.fileno());
    EXPECT_EQ(conn.family(), fam());
    EXPECT_EQ(conn.type(), sock::kind::stream);
    EXPECT_EQ(peer, client.getsockname());
    EXPECT_EQ(conn.getpeername(), client.getsockname());
    EXPECT_EQ(conn.getsockname(), bound);

    // Server step 5 / client step 3: the seed's exchange.
    EXPECT_EQ(client.send("1"), 1u);
    EXPECT_EQ(conn.recv(1024), "1");
    const std::string welcome = "welcome to server!";
    EXPECT_EQ(conn.send(welcome), welcome.size());
    EXPECT_EQ(client.recv(1024), welcome);

    // Server step 6: close; the client sees the end of the stream, then closes too.
    conn.close();
    EXPECT_EQ(conn.fileno(), -1);
    EXPECT_FALSE(conn);
    EXPECT_EQ(client.recv(1024), "");
    client.close();
    EXPECT_EQ(client.fileno(), -1);
    server.close();
    EXPECT_EQ(server.fileno(), -1);
}

TEST_P(Families, DatagramSendtoRecvfrom) {
    sock::socket server(fam(), sock::kind::dgram);
    EXPECT_EQ(server.type(), sock::kind::dgram);
    const sock::address asked = local("server");
    server.bind(asked);
    const sock::address bound = server.getsockname();
    expect_bound_as(bound, asked);

    sock::socket client(fam(), sock::kind::dgram);
    client.bind(local("client"));
    const sock::address client_name = client.getsockname();

    EXPECT_EQ(client.sendto("ping", bound), 4u);
    auto [data, from] = server.recvfrom(1024);
    EXPECT_EQ(data, "ping");
    EXPECT_EQ(from, client_name);

    EXPECT_EQ(server.sendto("pong!", from), 5u);
    auto [reply, replier] = client.recvfrom(1024);
    EXPECT_EQ(reply, "pong!");
    EXPECT_EQ(replier, bound);
}

TEST_P(Families, DatagramConnectedSendRecv) {
    sock::socket server(fam(), sock::kind::dgram);
    server.bind(local("server"));
    const sock::address bound = server.getsockname();

    sock::socket client(fam(), sock::kind::dgram);
    client.bind(local("client"));
    client.connect(bound);
    EXPECT_EQ(client.getpeername(), bound);

    EXPECT_EQ(client.send("hello"), 5u);
    auto [data, from] = server.recvfrom(64);
    EXPECT_EQ(data, "hello");
    EXPECT_EQ(from, client.getsockname());

    server.sendto("back", from);
    EXPECT_EQ(client.recv(64), "back");
}

TEST_P(Families, AcceptsSeveralClientsInOrder) {
    sock::socket server(fam(), sock::kind::stream);
    server.bind(local("server"));
    server.listen(4);
    const sock::address bound = server.getsockname();

    std::vector<sock::socket> clients;
    for (int i = 0; i < 3; ++i) {
        clients.emplace_back(fam(), sock::kind::stream);
        if (is_unix()) clients.back().bind(local("client" + std::to_string(i)));
        clients.back().connect(bound);
        clients.back().sendall("client " + std::to_string(i));
    }
    for (int i = 0; i < 3; ++i) {
        auto [conn, peer] = server.accept();
        EXPECT_EQ(peer, clients[static_cast<std::size_t>(i)].getsockname());
        EXPECT_EQ(conn.recv(100), "client " + std::to_string(i));
    }
}

// -- recv: at most max, the rest stays queued; empty at end of stream -----------------------

TEST(Recv, AtMostMaxRestStaysBufferedTcp) {
    auto [client, server] = test::connected_tcp_v4();
    client.sendall("0123456789");
    EXPECT_EQ(server.recv(4), "0123");
    EXPECT_EQ(server.recv(100), "456789");
}

TEST(Recv, AtMostMaxRestStaysBufferedUnix) {
    auto [a, b] = sock::socketpair();
    a.sendall("0123456789");
    EXPECT_EQ(b.recv(4), "0123");
    EXPECT_EQ(b.recv(1), "4");
    EXPECT_EQ(b.recv(100), "56789");
}

TEST(Recv, PeekLeavesDataQueued) {
    auto [a, b] = sock::socketpair();
    a.sendall("abcdef");
    EXPECT_EQ(b.recv(3, MSG_PEEK), "abc");
    EXPECT_EQ(b.recv(100), "abcdef");
}

TEST(Recv, EmptyAfterPeerShutdownWrite) {
    auto [client, server] = test::connected_tcp_v4();
    client.sendall("last words");
    client.shutdown(sock::shut::wr);
    EXPECT_EQ(server.recv(100), "last words");
    EXPECT_EQ(server.recv(100), "");
    EXPECT_EQ(server.recv(100), "");
    // The other direction still works.
    server.sendall("reply");
    EXPECT_EQ(client.recv(100), "reply");
}

TEST(Recv, EmptyAfterPeerClose) {
    auto [client, server] = test::connected_tcp_v4();
    client.sendall("bye");
    client.close();
    EXPECT_EQ(server.recv(100), "bye");
    EXPECT_EQ(server.recv(100), "");
}

TEST(Recv, EmptyAfterPeerCloseUnix) {
    auto [a, b] = sock::socketpair();
    a.close();
    EXPECT_EQ(b.recv(100), "");
}

TEST(RecvInto, CharSpan) {
    auto [a, b] = sock::socketpair();
    a.sendall("hello world");
    std::array<char, 5> small{};
    EXPECT_EQ(b.recv_into(std::span<char>(small)), 5u);
    EXPECT_EQ(std::string(small.data(), 5), "hello");
    std::array<char, 64> big{};
    const std::size_t n = b.recv_into(std::span<char>(big));
    EXPECT_EQ(n, 6u);
    EXPECT_EQ(std::string(big.data(), n), " world");
}

TEST(RecvInto, ByteSpan) {
    auto [a, b] = sock::socketpair();
    a.sendall(std::string_view("\x00\x01\xff\x7f", 4));
    std::array<std::byte, 16> buf{};
    const std::size_t n = b.recv_into(std::span<std::byte>(buf));
    ASSERT_EQ(n, 4u);
    EXPECT_EQ(buf[0], std::byte{0x00});
    EXPECT_EQ(buf[1], std::byte{0x01});
    EXPECT_EQ(buf[2], std::byte{0xff});
    EXPECT_EQ(buf[3], std::byte{0x7f});
    EXPECT_EQ(buf[4], std::byte{0x00});
}

TEST(RecvInto, PrefixOfBuffer) {
    auto [a, b] = sock::socketpair();
    a.sendall("abc");
    std::array<char, 8> buf{'-', '-', '-', '-', '-', '-', '-', '-'};
    EXPECT_EQ(b.recv_into(std::span<char>(buf).first(2)), 2u);
    EXPECT_EQ(std::string(buf.data(), 8), "ab------");
    EXPECT_EQ(b.recv_into(std::span<char>(buf)), 1u);
    EXPECT_EQ(buf[0], 'c');
}

TEST(RecvInto, ZeroAtEndOfStream) {
    auto [a, b] = sock::socketpair();
    a.shutdown(sock::shut::wr);
    std::array<char, 8> buf{};
    EXPECT_EQ(b.recv_into(std::span<char>(buf)), 0u);
    std::array<std::byte, 8> bytes{};
    EXPECT_EQ(b.recv_into(std::span<std::byte>(bytes)), 0u);
}

// -- send / sendall -----------------------------------------------------------------------

std::string read_to_end(sock::socket& s) {
    std::string out;
    for (;;) {
        std::string chunk = s.recv(65536);
        if (chunk.empty()) return out;
        out += chunk;
    }
}

TEST(Sendall, SeveralMegabytesOverSocketpair) {
    auto [a, b] = sock::socketpair();
    const std::string data = test::pattern(8u << 20);
    auto reader = std::async(std::launch::async, [&s = b] { return read_to_end(s); });
    a.sendall(data);
    a.shutdown(sock::shut::wr);
    const std::string got = reader.get();
    ASSERT_EQ(got.size(), data.size());
    EXPECT_TRUE(got == data);
}

TEST(Sendall, SeveralMegabytesOverTcp) {
    auto [client, server] = test::connected_tcp_v4();
    const std::string data = test::pattern(6u << 20);
    auto reader = std::async(std::launch::async, [&s = server] { return read_to_end(s); });
    client.sendall(data);
    client.close();
    const std::string got = reader.get();
    ASSERT_EQ(got.size(), data.size());
    EXPECT_TRUE(got == data);
}

TEST(Sendall, ErrorCodeFormReturnsFullCount) {
    auto [a, b] = sock::socketpair();
    const std::string data = test::pattern(3u << 20);
    auto reader = std::async(std::launch::async, [&s = b] { return read_to_end(s); });
    std::error_code ec = std::make_error_code(std::errc::io_error);
    EXPECT_EQ(a.sendall(data, 0, ec), data.size());
    EXPECT_FALSE(ec) << ec.message();
    a.close();
    EXPECT_TRUE(reader.get() == data);
}

TEST(Send, ReturnsBytesTaken) {
    auto [a, b] = sock::socketpair();
    EXPECT_EQ(a.send("twelve bytes"), 12u);
    EXPECT_EQ(a.send(""), 0u);
    EXPECT_EQ(b.recv(100), "twelve bytes");
}

// -- shutdown -----------------------------------------------------------------------------

TEST(Shutdown, WriteThenSendIsBrokenPipe) {
    auto [a, b] = sock::socketpair();
    a.shutdown(sock::shut::wr);
    auto t = capture([&a = a] { a.send("x"); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name() << ": " << t.what;
    EXPECT_EQ(t.code, std::errc::broken_pipe);
    EXPECT_TRUE(test::starts_with(t.what, "send")) << t.what;
    EXPECT_TRUE(test::ends_with(t.what, ": Broken pipe")) << t.what;
    EXPECT_TRUE(a) << "shutdown keeps the descriptor open";
}

TEST(Shutdown, ReadThenRecvIsEmpty) {
    auto [client, server] = test::connected_tcp_v4();
    server.shutdown(sock::shut::rd);
    EXPECT_EQ(server.recv(10), "");
    EXPECT_TRUE(test::fd_is_open(server.fileno()));
}

TEST(Shutdown, BothDirections) {
    auto [client, server] = test::connected_tcp_v4();
    server.shutdown(sock::shut::rdwr);
    EXPECT_EQ(client.recv(10), "");
    EXPECT_EQ(server.recv(10), "");
    std::error_code ec;
    server.send("x", 0, ec);
    EXPECT_EQ(ec, std::errc::broken_pipe);
}

// -- names --------------------------------------------------------------------------------

TEST(Names, GetsocknameAfterBind) {
    sock::socket s(sock::family::inet, sock::kind::stream);
    s.bind(sock::address("127.0.0.1", 0));
    const sock::address a = s.getsockname();
    EXPECT_EQ(a.family(), sock::family::inet);
    EXPECT_EQ(a.host(), "127.0.0.1");
    EXPECT_NE(a.port(), 0);
    EXPECT_EQ(a.to_string(), "127.0.0.1:" + std::to_string(a.port()));
}

TEST(Names, UnboundInetIsAnyPortZero) {
    sock::socket s(sock::family::inet, sock::kind::stream);
    EXPECT_EQ(s.getsockname(), sock::address("0.0.0.0", 0));
}

TEST(Names, GetpeernameUnconnectedThrowsNotConnected) {
    sock::socket s(sock::family::inet, sock::kind::stream);
    auto t = capture([&] { s.getpeername(); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name();
    EXPECT_EQ(t.code, std::errc::not_connected);
    EXPECT_TRUE(test::starts_with(t.what, "getpeername")) << t.what;
    EXPECT_TRUE(test::ends_with(t.what, ": Transport endpoint is not connected")) << t.what;
}

TEST(Names, BindResolvesLocalhost) {
    sock::socket s(sock::family::inet, sock::kind::stream);
    s.bind(sock::address("localhost", 0));
    EXPECT_EQ(s.getsockname().host(), "127.0.0.1");
}

TEST(Names, BindUnixPathCreatesFile) {
    test::temp_dir dir;
    sock::socket s(sock::family::local, sock::kind::stream);
    s.bind(sock::address::unix_path(dir.file("s.sock")));
    EXPECT_TRUE(std::filesystem::is_socket(dir.file("s.sock")));
    EXPECT_EQ(s.getsockname().path(), dir.file("s.sock"));
}

TEST(Names, BindUnixPathTwiceIsAddressInUse) {
    test::temp_dir dir;
    const auto path = sock::address::unix_path(dir.file("s.sock"));
    sock::socket first(sock::family::local, sock::kind::stream);
    first.bind(path);
    sock::socket second(sock::family::local, sock::kind::stream);
    auto t = capture([&] { second.bind(path); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name();
    EXPECT_EQ(t.code, std::errc::address_in_use);
    EXPECT_EQ(t.what, "bind " + dir.file("s.sock") + ": Address already in use");
}

TEST(Names, BindEmptyAddressFails) {
    sock::socket s(sock::family::inet, sock::kind::stream);
    std::error_code ec;
    s.bind(sock::address(), ec);
    EXPECT_TRUE(ec);
    EXPECT_THROW(s.bind(sock::address()), sock::error);
}

// -- connect failures ---------------------------------------------------------------------

TEST(Connect, RefusedMessage) {
    sock::socket refusing = test::refusing_v4();
    const std::uint16_t port = refusing.getsockname().port();
    sock::socket c(sock::family::inet, sock::kind::stream);
    auto t = capture([&] { c.connect(sock::address("127.0.0.1", port)); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name() << ": " << t.what;
    EXPECT_EQ(t.code, std::errc::connection_refused);
    EXPECT_EQ(t.what, "connect 127.0.0.1:" + std::to_string(port) + ": Connection refused");
}

TEST(Connect, RefusedUnixPathMessage) {
    test::temp_dir dir;
    sock::socket c(sock::family::local, sock::kind::stream);
    auto t = capture([&] { c.connect(sock::address::unix_path(dir.file("none.sock"))); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name() << ": " << t.what;
    EXPECT_EQ(t.code, std::errc::no_such_file_or_directory);
    EXPECT_EQ(t.what, "connect " + dir.file("none.sock") + ": No such file or directory");
}

TEST(Connect, ConnectExReturnsRefused) {
    sock::socket refusing = test::refusing_v4();
    sock::socket c(sock::family::inet, sock::kind::stream);
    std::error_code ec;
    EXPECT_NO_THROW(ec = c.connect_ex(refusing.getsockname()));
    EXPECT_EQ(ec, std::errc::connection_refused);
}

TEST(Connect, ConnectExEmptyOnSuccess) {
    sock::socket l = test::listener_v4();
    sock::socket c(sock::family::inet, sock::kind::stream);
    EXPECT_FALSE(c.connect_ex(l.getsockname()));
    auto [conn, peer] = l.accept();
    EXPECT_EQ(peer, c.getsockname());
}

TEST(Connect, ResolvesLocalhost) {
    sock::socket l = test::listener_v4();
    sock::socket c(sock::family::inet, sock::kind::stream);
    c.connect(sock::address("localhost", l.getsockname().port()));
    EXPECT_EQ(c.getpeername(), l.getsockname());
}

// A name with two IPv4 loopback addresses, seen only inside RUN_WITH_HOSTS's child.
constexpr const char* two_address_hosts =
    "127.0.0.1 multi.sock-test\n127.0.0.2 multi.sock-test\n";

/// Connecting by name tries each address in turn: the first refuses, the second listens.
void expect_connect_reaches_second_address(std::optional<double> timeout) {
    auto infos = sock::getaddrinfo("multi.sock-test", 0, sock::family::inet);
    ASSERT_EQ(infos.size(), 2u);
    const std::string first = infos[0].addr.host();
    const std::string second = infos[1].addr.host();
    ASSERT_NE(first, second);

    auto [refusing, listener] = test::same_port(first, second);
    listener.listen(4);
    const std::uint16_t port = listener.getsockname().port();

    sock::socket c(sock::family::inet, sock::kind::stream);
    if (timeout) c.settimeout(*timeout);
    auto t = capture([&] { c.connect(sock::address("multi.sock-test", port)); });
    ASSERT_EQ(t.type, nullptr) << t.type_name() << ": " << t.what;
    EXPECT_EQ(c.getpeername(), sock::address(second, port));
    auto [conn, peer] = listener.accept();
    EXPECT_EQ(peer, c.getsockname());
}

TEST(Connect, TriesEachAddressOfAName) {
    RUN_WITH_HOSTS(two_address_hosts, [] { expect_connect_reaches_second_address(std::nullopt); });
}

TEST(Connect, TriesEachAddressOfANameWithTimeout) {
    RUN_WITH_HOSTS(two_address_hosts, [] { expect_connect_reaches_second_address(30.0); });
}

// -- SIGPIPE ------------------------------------------------------------------------------

bool sigpipe_is_default() {
    struct sigaction current {};
    return ::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL;
}

TEST(NoSigpipe, SendToClosedPeerThrowsBrokenPipe) {
    ASSERT_TRUE(sigpipe_is_default()) << "something ignored SIGPIPE before the test";
    auto [a, b] = sock::socketpair();
    b.close();
    auto t = capture([&a = a] { a.send("x"); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name() << ": " << t.what;
    EXPECT_EQ(t.code, std::errc::broken_pipe);

    auto all = capture([&a = a] { a.sendall(test::pattern(100000)); });
    ASSERT_TRUE(all.is<sock::error>()) << all.type_name() << ": " << all.what;
    EXPECT_EQ(all.code, std::errc::broken_pipe);
    EXPECT_TRUE(sigpipe_is_default()) << "the library must not ignore SIGPIPE process-wide";
}

TEST(NoSigpipe, TcpPeerClosed) {
    ASSERT_TRUE(sigpipe_is_default());
    auto [client, server] = test::connected_tcp_v4();
    server.close();
    std::error_code ec;
    for (int i = 0; i < 1000 && !ec; ++i) client.send("data", 0, ec);
    EXPECT_TRUE(ec == std::errc::broken_pipe || ec == std::errc::connection_reset)
        << ec.message();
    ec.clear();
    client.send("more", 0, ec);
    EXPECT_EQ(ec, std::errc::broken_pipe);
    EXPECT_TRUE(sigpipe_is_default());
}

TEST(NoSigpipe, SendtoOnShutDownDgramSocket) {
    ASSERT_TRUE(sigpipe_is_default());
    auto [a, b] = sock::socketpair(sock::family::local, sock::kind::dgram);
    a.shutdown(sock::shut::wr);
    std::error_code ec;
    a.send("x", 0, ec);
    EXPECT_EQ(ec, std::errc::broken_pipe);
    EXPECT_TRUE(sigpipe_is_default());
}

// -- raw sockets --------------------------------------------------------------------------

TEST(RawSocket, CreatedWithPrivilege) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (CAP_NET_RAW)";
    sock::socket s(sock::family::inet, sock::kind::raw, IPPROTO_ICMP);
    EXPECT_TRUE(s);
    EXPECT_EQ(s.family(), sock::family::inet);
    EXPECT_EQ(s.type(), sock::kind::raw);
    EXPECT_EQ(s.proto(), IPPROTO_ICMP);
    EXPECT_TRUE(test::fd_is_cloexec(s.fileno()));
}

// Exit codes of the unprivileged child.
enum : int {
    raw_permission_error = 0,
    raw_no_error = 10,
    raw_timeout = 11,
    raw_gaierror = 12,
    raw_other_errno = 13,
    raw_other_exception = 14,
    raw_cannot_drop = 20,
};

int try_raw_socket() {
    try {
        sock::socket s(sock::family::inet, sock::kind::raw, IPPROTO_ICMP);
        return raw_no_error;
    } catch (const sock::timeout&) {
        return raw_timeout;
    } catch (const sock::gaierror&) {
        return raw_gaierror;
    } catch (const sock::error& e) {
        if (e.code() == std::errc::operation_not_permitted ||
            e.code() == std::errc::permission_denied)
            return raw_permission_error;
        return raw_other_errno;
    } catch (...) {
        return raw_other_exception;
    }
}

TEST(RawSocket, WithoutPrivilegeThrowsPermissionError) {
    if (::geteuid() != 0) {
        EXPECT_EQ(try_raw_socket(), raw_permission_error);
        return;
    }
    const pid_t pid = ::fork();
    ASSERT_NE(pid, -1);
    if (pid == 0) {
        if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0)
            ::_exit(raw_cannot_drop);
        ::_exit(try_raw_socket());
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "child died with signal " << WTERMSIG(status);
    if (WEXITSTATUS(status) == raw_cannot_drop) GTEST_SKIP() << "cannot drop privileges here";
    EXPECT_EQ(WEXITSTATUS(status), raw_permission_error)
        << "10: no error, 11: timeout, 12: gaierror, 13: other errno, 14: other exception";
}

}  // namespace
