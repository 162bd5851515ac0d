// sendmsg/recvmsg with ancillary data, and descriptor passing (send_fds/recv_fds): gathering
// buffers, truncation flags, SCM_RIGHTS and SCM_CREDENTIALS, ownership of received
// descriptors, timeouts and SIGPIPE. Socket pairs and 127.0.0.1 only.

#include "support.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using test::capture;
using test::fd_is_cloexec;
using test::fd_is_open;

/// A pipe whose ends close with the test.
struct pipe_pair {
    sock::owned_fd read, write;
    pipe_pair() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::system_category(), "pipe2");
        read = sock::owned_fd(fds[0]);
        write = sock::owned_fd(fds[1]);
    }
};

std::string bytes_of_ints(std::initializer_list<int> fds) {
    std::string out;
    for (int fd : fds) out.append(reinterpret_cast<const char*>(&fd), sizeof fd);
    return out;
}

/// Fills s's send buffer until the kernel takes no more, leaving s blocking again.
void fill(sock::socket& s) {
    s.setblocking(false);
    const std::string chunk(65536, 'x');
    std::error_code ec;
    while (!ec) s.send(chunk, 0, ec);
    ASSERT_EQ(ec, std::errc::resource_unavailable_try_again);
    s.setblocking(true);
}

TEST(OwnedFd, ClosesWhenDroppedAndMovesOwnership) {
    pipe_pair p;
    const int n = p.write.get();
    sock::owned_fd moved = std::move(p.write);
    EXPECT_FALSE(p.write);
    EXPECT_EQ(moved.get(), n);
    { sock::owned_fd gone = std::move(moved); }
    EXPECT_FALSE(fd_is_open(n));
    const int r = p.read.release();
    EXPECT_EQ(p.read.get(), -1);
    EXPECT_TRUE(fd_is_open(r));
    sock::owned_fd again(r);
    again.close();
    again.close();
    EXPECT_FALSE(fd_is_open(r));
}

TEST(Sendmsg, GathersBuffersIntoOneDatagram) {
    auto [a, b] = sock::socketpair(sock::family::local, sock::kind::dgram);
    const std::array<std::string_view, 3> parts{"one ", "", "two"};
    EXPECT_EQ(a.sendmsg(parts), 7u);
    const sock::message m = b.recvmsg(64);
    EXPECT_EQ(m.data, "one two");
    EXPECT_TRUE(m.ancdata.empty());
    EXPECT_EQ(m.msg_flags, 0);
}

TEST(Recvmsg, ShortBufferReportsMsgTrunc) {
    auto [a, b] = sock::socketpair(sock::family::local, sock::kind::dgram);
    const std::array<std::string_view, 1> parts{"0123456789"};
    a.sendmsg(parts);
    const auto m = b.recvmsg(4);
    EXPECT_EQ(m.data, "0123");
    EXPECT_NE(m.msg_flags & MSG_TRUNC, 0);
}

TEST(Sendmsg, ToAnAddressAndRecvmsgNamesTheSender) {
    sock::socket rx(sock::family::inet, sock::kind::dgram);
    rx.bind({"127.0.0.1", 0});
    sock::socket tx(sock::family::inet, sock::kind::dgram);
    tx.bind({"127.0.0.1", 0});
    const std::array<std::string_view, 2> parts{"hel", "lo"};
    EXPECT_EQ(tx.sendmsg(parts, {}, 0, rx.getsockname()), 5u);
    const auto m = rx.recvmsg(64, 256);
    EXPECT_EQ(m.data, "hello");
    EXPECT_EQ(m.addr, tx.getsockname());
}

TEST(Sendmsg, RightsItemArrivesCloseOnExec) {
    auto [a, b] = sock::socketpair(sock::family::local, sock::kind::stream);
    pipe_pair p;
    const std::array<std::string_view, 1> parts{"x"};
    const std::array<sock::ancillary, 1> items{
        sock::ancillary{SOL_SOCKET, SCM_RIGHTS, bytes_of_ints({p.write.get()})}};
    EXPECT_EQ(a.sendmsg(parts, items), 1u);
    const auto m = b.recvmsg(16, CMSG_SPACE(sizeof(int)));
    EXPECT_EQ(m.data, "x");
    ASSERT_EQ(m.ancdata.size(), 1u);
    EXPECT_EQ(m.ancdata[0].level, SOL_SOCKET);
    EXPECT_EQ(m.ancdata[0].type, SCM_RIGHTS);
    ASSERT_EQ(m.ancdata[0].data.size(), sizeof(int));
    int got = -1;
    std::memcpy(&got, m.ancdata[0].data.data(), sizeof got);
    sock::owned_fd received(got);  // recvmsg leaves descriptors to the caller
    EXPECT_NE(got, p.write.get());
    EXPECT_TRUE(fd_is_cloexec(got));
    ASSERT_EQ(::write(got, "!", 1), 1);
    char c = 0;
    ASSERT_EQ(::read(p.read.get(), &c, 1), 1);
    EXPECT_EQ(c, '!');
}

TEST(Sendmsg, CredentialsItem) {
    auto [a, b] = sock::socketpair(sock::family::local, sock::kind::dgram);
    b.setsockopt(SOL_SOCKET, SO_PASSCRED, 1);
    const ::ucred mine{::getpid(), ::getuid(), ::getgid()};
    const std::array<sock::ancillary, 1> items{sock::ancillary{
        SOL_SOCKET, SCM_CREDENTIALS, std::string(reinterpret_cast<const char*>(&mine), sizeof mine)}};
    const std::array<std::string_view, 1> parts{"who"};
    a.sendmsg(parts, items);
    const auto m = b.recvmsg(16, CMSG_SPACE(sizeof(::ucred)));
    EXPECT_EQ(m.data, "who");
    ASSERT_EQ(m.ancdata.size(), 1u);
    EXPECT_EQ(m.ancdata[0].type, SCM_CREDENTIALS);
    ASSERT_EQ(m.ancdata[0].data.size(), sizeof(::ucred));
    ::ucred got{};
    std::memcpy(&got, m.ancdata[0].data.data(), sizeof got);
    EXPECT_EQ(got.pid, mine.pid);
    EXPECT_EQ(got.uid, mine.uid);
    EXPECT_EQ(got.gid, mine.gid);
}

TEST(Recvmsg, TooSmallAncillaryBufferReportsCtrunc) {
    auto [a, b] = sock::socketpair(sock::family::local, sock::kind::dgram);
    pipe_pair p;
    const std::array<std::string_view, 1> parts{"x"};
    const int fds[] = {p.read.get(), p.write.get()};
    a.send_fds(parts, fds);
    const auto m = b.recvmsg(16, 0);
    EXPECT_EQ(m.data, "x");
    EXPECT_TRUE(m.ancdata.empty());
    EXPECT_NE(m.msg_flags & MSG_CTRUNC, 0);
}

TEST(SendFds, ReceivedDescriptorsAreOwnedAndCloseOnExec) {
    auto [a, b] = sock::socketpair();
    pipe_pair p;
    const std::array<std::string_view, 2> parts{"fd", "s"};
    const int fds[] = {p.write.get(), p.read.get()};
    EXPECT_EQ(a.send_fds(parts, fds), 3u);
    int numbers[2] = {-1, -1};
    {
        sock::fds_message m = b.recv_fds(16, 4);
        EXPECT_EQ(m.data, "fds");
        EXPECT_EQ(m.msg_flags & MSG_CTRUNC, 0);
        ASSERT_EQ(m.fds.size(), 2u);
        for (std::size_t i = 0; i < 2; ++i) {
            numbers[i] = m.fds[i].get();
            EXPECT_TRUE(fd_is_cloexec(numbers[i]));
            EXPECT_NE(numbers[i], fds[0]);
            EXPECT_NE(numbers[i], fds[1]);
        }
        // The first received descriptor is a copy of the pipe's write end.
        ASSERT_EQ(::write(m.fds[0].get(), "?", 1), 1);
        char c = 0;
        ASSERT_EQ(::read(m.fds[1].get(), &c, 1), 1);
        EXPECT_EQ(c, '?');
    }
    // Dropping the result closed both; the sender's descriptors are untouched.
    EXPECT_FALSE(fd_is_open(numbers[0]));
    EXPECT_FALSE(fd_is_open(numbers[1]));
    EXPECT_TRUE(fd_is_open(p.write.get()));
    EXPECT_TRUE(fd_is_open(p.read.get()));
}

TEST(SendFds, MoreThanMaxfdsReportsCtruncAndKeepsTheFirst) {
    auto [a, b] = sock::socketpair(sock::family::local, sock::kind::dgram);
    pipe_pair p;
    const std::array<std::string_view, 1> parts{"x"};
    const int fds[] = {p.write.get(), p.read.get(), p.write.get()};
    a.send_fds(parts, fds);
    auto m = b.recv_fds(16, 1);
    EXPECT_EQ(m.data, "x");
    ASSERT_EQ(m.fds.size(), 1u);
    EXPECT_NE(m.msg_flags & MSG_CTRUNC, 0);
    ASSERT_EQ(::write(m.fds[0].get(), "+", 1), 1);
    // release() hands the descriptor over; the caller closes it.
    sock::owned_fd mine(m.fds[0].release());
    EXPECT_TRUE(fd_is_open(mine.get()));
}

TEST(SendFds, NoDescriptorsIsAPlainMessage) {
    auto [a, b] = sock::socketpair(sock::family::local, sock::kind::dgram);
    const std::array<std::string_view, 1> parts{"plain"};
    EXPECT_EQ(a.send_fds(parts, std::span<const int>{}), 5u);
    auto m = b.recv_fds(16, 2);
    EXPECT_EQ(m.data, "plain");
    EXPECT_TRUE(m.fds.empty());
    EXPECT_EQ(m.msg_flags, 0);
}

TEST(SendFds, DescriptorsReachASocketAdoptedFromOne) {
    auto [a, b] = sock::socketpair();
    auto [c, d] = sock::socketpair();
    const std::array<std::string_view, 1> parts{"take this"};
    const int fds[] = {c.fileno()};
    a.send_fds(parts, fds);
    auto m = b.recv_fds(64, 1);
    ASSERT_EQ(m.fds.size(), 1u);
    sock::socket c2 = sock::socket::from_fd(m.fds[0].release());
    EXPECT_EQ(c2.family(), sock::family::local);
    c2.sendall("through the copy");
    EXPECT_EQ(d.recv(64), "through the copy");
}

TEST(Recvmsg, TimeoutThrowsNamingTheCall) {
    auto pair = sock::socketpair();
    sock::socket& b = pair.second;
    b.settimeout(0.02);
    auto t = capture([&] { (void)b.recvmsg(16, 64); });
    ASSERT_TRUE(t.is<sock::timeout>()) << t.type_name() << " " << t.what;
    EXPECT_TRUE(test::starts_with(t.what, "recvmsg ")) << t.what;
    EXPECT_TRUE(test::ends_with(t.what, ": timed out")) << t.what;
    auto t2 = capture([&] { (void)b.recv_fds(16, 1); });
    ASSERT_TRUE(t2.is<sock::timeout>()) << t2.type_name() << " " << t2.what;
    EXPECT_TRUE(test::starts_with(t2.what, "recv_fds ")) << t2.what;
}

TEST(Recvmsg, TimeoutWaitsForDataThatComes) {
    auto pair = sock::socketpair();
    sock::socket& a = pair.first;
    sock::socket& b = pair.second;
    b.settimeout(30.0);
    std::thread later([&a] { a.sendall("late"); });
    const auto m = b.recvmsg(16);
    later.join();
    EXPECT_EQ(m.data, "late");
}

TEST(Recvmsg, NonBlockingWouldBlock) {
    auto [a, b] = sock::socketpair();
    b.setblocking(false);
    std::error_code ec;
    auto m = b.recvmsg(16, 0, 0, ec);
    EXPECT_EQ(ec, std::errc::resource_unavailable_try_again);
    EXPECT_TRUE(m.data.empty());
    b.recv_fds(16, 1, 0, ec);
    EXPECT_EQ(ec, std::errc::resource_unavailable_try_again);
}

TEST(Sendmsg, TimeoutOnAFullBuffer) {
    auto pair = sock::socketpair();
    sock::socket& a = pair.first;
    fill(a);
    a.settimeout(0.02);
    const std::array<std::string_view, 1> parts{"more"};
    auto t = capture([&] { (void)a.sendmsg(parts); });
    ASSERT_TRUE(t.is<sock::timeout>()) << t.type_name() << " " << t.what;
    EXPECT_TRUE(test::starts_with(t.what, "sendmsg ")) << t.what;
    const int fds[] = {0};
    auto t2 = capture([&] { (void)a.send_fds(parts, fds); });
    ASSERT_TRUE(t2.is<sock::timeout>()) << t2.type_name() << " " << t2.what;
    EXPECT_TRUE(test::starts_with(t2.what, "send_fds ")) << t2.what;
}

TEST(Sendmsg, ClosedPeerIsEpipeNotSigpipe) {
    auto pair = sock::socketpair();
    sock::socket& a = pair.first;
    sock::socket& b = pair.second;
    b.close();
    const std::array<std::string_view, 1> parts{"anyone?"};
    std::error_code ec;
    EXPECT_EQ(a.sendmsg(parts, {}, 0, {}, ec), 0u);
    EXPECT_EQ(ec, std::errc::broken_pipe);
    const int fds[] = {a.fileno()};
    auto t = capture([&] { (void)a.send_fds(parts, fds); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name();
    EXPECT_TRUE(test::ends_with(t.what, ": Broken pipe")) << t.what;
}

TEST(Sendmsg, UnresolvableAddressNamesIt) {
    sock::socket s(sock::family::local, sock::kind::dgram);
    const std::array<std::string_view, 1> parts{"x"};
    const auto to = sock::address::unix_path(test::abstract_name("nobody"));
    auto t = capture([&] { (void)s.sendmsg(parts, {}, 0, to); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name();
    EXPECT_EQ(t.code, std::errc::connection_refused);
    EXPECT_EQ(t.what, "sendmsg " + to.to_string() + ": Connection refused");
}

}  // namespace
