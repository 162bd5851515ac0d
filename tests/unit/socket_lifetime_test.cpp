// Ownership of the descriptor: creation, close, move, detach, dup, from_fd, close-on-exec.

#include "support.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <utility>

namespace {

using test::fd_is_cloexec;
using test::fd_is_open;

TEST(Create, DefaultsAreInetStream) {
    sock::socket s;
    EXPECT_TRUE(s);
    EXPECT_GE(s.fileno(), 0);
    EXPECT_EQ(s.family(), sock::family::inet);
    EXPECT_EQ(s.type(), sock::kind::stream);
    EXPECT_EQ(s.proto(), 0);
    int type = 0;
    ::socklen_t len = sizeof type;
    ASSERT_EQ(::getsockopt(s.fileno(), SOL_SOCKET, SO_TYPE, &type, &len), 0);
    EXPECT_EQ(type, SOCK_STREAM);
    int domain = 0;
    len = sizeof domain;
    ASSERT_EQ(::getsockopt(s.fileno(), SOL_SOCKET, SO_DOMAIN, &domain, &len), 0);
    EXPECT_EQ(domain, AF_INET);
}

TEST(Create, KernelSocketMatchesArguments) {
    sock::socket s(sock::family::local, sock::kind::seqpacket);
    EXPECT_EQ(s.family(), sock::family::local);
    EXPECT_EQ(s.type(), sock::kind::seqpacket);
    int type = 0;
    ::socklen_t len = sizeof type;
    ASSERT_EQ(::getsockopt(s.fileno(), SOL_SOCKET, SO_TYPE, &type, &len), 0);
    EXPECT_EQ(type, SOCK_SEQPACKET);
}

TEST(Create, ExplicitProtocol) {
    sock::socket s(sock::family::inet, sock::kind::dgram, IPPROTO_UDP);
    EXPECT_EQ(s.proto(), IPPROTO_UDP);
}

TEST(Create, BadFamilyThrows) {
    auto t = test::capture(
        [] { sock::socket s(static_cast<sock::family>(12345), sock::kind::stream); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name();
    EXPECT_EQ(t.code, std::errc::address_family_not_supported);
}

TEST(Create, InvalidOwnsNothing) {
    sock::socket s = sock::socket::invalid();
    EXPECT_FALSE(s);
    EXPECT_EQ(s.fileno(), -1);
    s.close();
    EXPECT_EQ(s.detach(), -1);
}

// -- close --------------------------------------------------------------------------------

TEST(Close, ClosesDescriptor) {
    sock::socket s;
    const int fd = s.fileno();
    ASSERT_TRUE(fd_is_open(fd));
    s.close();
    EXPECT_EQ(s.fileno(), -1);
    EXPECT_FALSE(s);
    EXPECT_FALSE(fd_is_open(fd));
}

TEST(Close, TwiceIsHarmless) {
    sock::socket s;
    s.close();
    EXPECT_NO_THROW(s.close());
    EXPECT_EQ(s.fileno(), -1);
}

TEST(Close, DestructorAfterCloseDoesNotCloseAReusedNumber) {
    int reused = -1;
    {
        sock::socket s;
        const int fd = s.fileno();
        s.close();
        s.close();
        // The lowest free number is the one just released.
        reused = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ASSERT_GE(reused, 0);
        if (reused != fd) {
            ::close(reused);
            GTEST_SKIP() << "descriptor number not reused";
        }
    }
    EXPECT_TRUE(fd_is_open(reused)) << "a closed socket closed another descriptor";
    ::close(reused);
}

TEST(Close, DestructorCloses) {
    int fd = -1;
    {
        sock::socket s(sock::family::local, sock::kind::stream);
        fd = s.fileno();
        ASSERT_TRUE(fd_is_open(fd));
    }
    EXPECT_FALSE(fd_is_open(fd));
}

TEST(Close, PeerSeesEndOfStream) {
    auto [a, b] = sock::socketpair();
    a.close();
    EXPECT_EQ(b.recv(10), "");
}

// -- move ---------------------------------------------------------------------------------

TEST(Move, ConstructionTransfersOwnership) {
    sock::socket a(sock::family::local, sock::kind::dgram);
    a.settimeout(2.5);
    const int fd = a.fileno();
    sock::socket b(std::move(a));
    EXPECT_EQ(a.fileno(), -1);  // NOLINT(bugprone-use-after-move): moved-from state is specified
    EXPECT_FALSE(a);
    EXPECT_EQ(b.fileno(), fd);
    EXPECT_EQ(b.family(), sock::family::local);
    EXPECT_EQ(b.type(), sock::kind::dgram);
    EXPECT_EQ(b.gettimeout(), sock::timeout_t(std::chrono::milliseconds(2500)));
    a.close();
    EXPECT_TRUE(fd_is_open(fd));
}

TEST(Move, MovedFromDestructorLeavesDescriptorOpen) {
    int fd = -1;
    sock::socket b = sock::socket::invalid();
    {
        sock::socket a;
        fd = a.fileno();
        b = std::move(a);
    }
    EXPECT_TRUE(fd_is_open(fd));
    EXPECT_EQ(b.fileno(), fd);
}

TEST(Move, AssignmentOverOpenSocketClosesIt) {
    sock::socket a(sock::family::inet, sock::kind::stream);
    sock::socket b(sock::family::local, sock::kind::dgram);
    const int fa = a.fileno();
    const int fb = b.fileno();
    ASSERT_NE(fa, fb);
    b = std::move(a);
    EXPECT_EQ(b.fileno(), fa);
    EXPECT_EQ(b.family(), sock::family::inet);
    EXPECT_EQ(b.type(), sock::kind::stream);
    EXPECT_EQ(a.fileno(), -1);  // NOLINT(bugprone-use-after-move)
    EXPECT_TRUE(fd_is_open(fa));
    errno = 0;
    EXPECT_EQ(::fcntl(fb, F_GETFD), -1);
    EXPECT_EQ(errno, EBADF);
}

TEST(Move, MovedSocketStillWorks) {
    auto [a, b] = sock::socketpair();
    sock::socket moved(std::move(a));
    moved.sendall("through the move");
    EXPECT_EQ(b.recv(100), "through the move");
}

// -- detach -------------------------------------------------------------------------------

TEST(Detach, ReturnsDescriptorAndStopsOwningIt) {
    int fd = -1;
    {
        sock::socket s;
        const int before = s.fileno();
        fd = s.detach();
        EXPECT_EQ(fd, before);
        EXPECT_EQ(s.fileno(), -1);
        EXPECT_FALSE(s);
        EXPECT_EQ(s.detach(), -1);
        s.close();
    }
    EXPECT_TRUE(fd_is_open(fd));
    EXPECT_EQ(::close(fd), 0);
}

TEST(Detach, ClosedSocketReturnsMinusOne) {
    sock::socket s;
    s.close();
    EXPECT_EQ(s.detach(), -1);
}

// -- from_fd ------------------------------------------------------------------------------

TEST(FromFd, DetectsInet6Dgram) {
    const int fd = ::socket(AF_INET6, SOCK_DGRAM, 0);
    if (fd < 0) GTEST_SKIP() << "no AF_INET6 here";
    {
        sock::socket s = sock::socket::from_fd(fd);
        EXPECT_EQ(s.fileno(), fd);
        EXPECT_EQ(s.family(), sock::family::inet6);
        EXPECT_EQ(s.type(), sock::kind::dgram);
    }
    EXPECT_FALSE(fd_is_open(fd)) << "from_fd must own the descriptor";
}

TEST(FromFd, DetectsProtocolLikePython) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    ASSERT_GE(fd, 0);
    sock::socket s = sock::socket::from_fd(fd);
    EXPECT_EQ(s.proto(), IPPROTO_UDP);
}

TEST(FromFd, DetectsUnixStream) {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    sock::socket a = sock::socket::from_fd(fds[0]);
    sock::socket b = sock::socket::from_fd(fds[1]);
    EXPECT_EQ(a.family(), sock::family::local);
    EXPECT_EQ(a.type(), sock::kind::stream);
    a.sendall("adopted");
    EXPECT_EQ(b.recv(100), "adopted");
}

TEST(FromFd, AdoptsListeningSocket) {
    sock::socket original = test::listener_v4();
    const sock::address name = original.getsockname();
    sock::socket adopted = sock::socket::from_fd(original.detach());
    EXPECT_EQ(adopted.family(), sock::family::inet);
    EXPECT_EQ(adopted.type(), sock::kind::stream);
    EXPECT_EQ(adopted.getsockname(), name);
    sock::socket c;
    c.connect(name);
    auto [conn, peer] = adopted.accept();
    EXPECT_EQ(peer, c.getsockname());
}

TEST(FromFd, NotASocketThrows) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    auto t = test::capture([&] { sock::socket s = sock::socket::from_fd(fds[0]); });
    ::close(fds[1]);
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name();
    EXPECT_EQ(t.code, std::errc::not_a_socket);
    if (fd_is_open(fds[0])) ::close(fds[0]);
}

// -- close-on-exec ------------------------------------------------------------------------

TEST(Cloexec, CreatedSockets) {
    sock::socket tcp(sock::family::inet, sock::kind::stream);
    sock::socket udp(sock::family::inet, sock::kind::dgram);
    sock::socket unix_stream(sock::family::local, sock::kind::stream);
    EXPECT_TRUE(fd_is_cloexec(tcp.fileno()));
    EXPECT_TRUE(fd_is_cloexec(udp.fileno()));
    EXPECT_TRUE(fd_is_cloexec(unix_stream.fileno()));
}

TEST(Cloexec, AcceptedSocket) {
    sock::socket l = test::listener_v4();
    sock::socket c;
    c.connect(l.getsockname());
    auto [conn, peer] = l.accept();
    EXPECT_TRUE(fd_is_cloexec(conn.fileno()));
    EXPECT_EQ(peer, c.getsockname());
}

TEST(Cloexec, AcceptedUnixSocket) {
    test::temp_dir dir;
    sock::socket l(sock::family::local, sock::kind::stream);
    l.bind(sock::address::unix_path(dir.file("l")));
    l.listen(1);
    sock::socket c(sock::family::local, sock::kind::stream);
    c.connect(l.getsockname());
    auto [conn, peer] = l.accept();
    EXPECT_TRUE(fd_is_cloexec(conn.fileno()));
    EXPECT_TRUE(peer.is_unix() || peer.empty());
}

TEST(Cloexec, SocketpairBothEnds) {
    for (sock::kind k : {sock::kind::stream, sock::kind::dgram}) {
        auto [a, b] = sock::socketpair(sock::family::local, k);
        EXPECT_TRUE(fd_is_cloexec(a.fileno()));
        EXPECT_TRUE(fd_is_cloexec(b.fileno()));
    }
}

}  // namespace

namespace {

TEST(Dup, CopiesFamilyTypeTimeoutAndIsCloexec) {
    sock::socket s(sock::family::local, sock::kind::dgram);
    s.settimeout(2.5);
    sock::socket d = s.dup();
    ASSERT_TRUE(d);
    EXPECT_NE(d.fileno(), s.fileno());
    EXPECT_EQ(d.family(), sock::family::local);
    EXPECT_EQ(d.type(), sock::kind::dgram);
    EXPECT_EQ(d.proto(), s.proto());
    EXPECT_EQ(d.gettimeout(), s.gettimeout());
    EXPECT_TRUE(fd_is_cloexec(d.fileno()));
    EXPECT_TRUE(test::fd_is_nonblocking(d.fileno()));
}

TEST(Dup, BothEndsUseOneConnectionAndCloseSeparately) {
    auto [a, b] = sock::socketpair();
    sock::socket a2 = a.dup();
    const int first = a.fileno();
    a.close();
    EXPECT_FALSE(fd_is_open(first));
    EXPECT_TRUE(fd_is_open(a2.fileno()));
    a2.sendall("via dup");
    EXPECT_EQ(b.recv(64), "via dup");
    a2.close();
    EXPECT_EQ(b.recv(64), "");  // the last descriptor gone: end of stream
}

TEST(Dup, ClosedSocketFails) {
    sock::socket s;
    s.close();
    std::error_code ec;
    sock::socket d = s.dup(ec);
    EXPECT_EQ(ec, std::errc::bad_file_descriptor);
    EXPECT_FALSE(d);
    EXPECT_THROW((void)s.dup(), sock::error);
}

}  // namespace
