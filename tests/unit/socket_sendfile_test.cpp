// sendfile: the kernel path for regular files on stream sockets, the read-and-send fallback
// (pipes, datagram sockets), offsets and counts, the file position afterwards, timeouts
// between partial sends. Socket pairs and temp files only.

#include "support.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <string>

namespace {

using test::capture;
using test::pattern;

/// A temp file holding `content`, open read-only.
struct temp_file {
    test::temp_dir dir;
    std::string path = dir.file("data");
    sock::owned_fd fd;
    explicit temp_file(const std::string& content) {
        std::ofstream(path, std::ios::binary) << content;
        fd = sock::owned_fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd) throw std::system_error(errno, std::system_category(), "open " + path);
    }
    ::off_t position() const { return ::lseek(fd.get(), 0, SEEK_CUR); }
};

/// Reads s to end of stream on another thread.
std::future<std::string> read_all(sock::socket& s) {
    return std::async(std::launch::async, [&s] {
        std::string all;
        for (;;) {
            auto chunk = s.recv(65536);
            if (chunk.empty()) return all;
            all += chunk;
        }
    });
}

TEST(Sendfile, WholeRegularFileOverTcp) {
    const std::string content = pattern(300000);
    temp_file f(content);
    auto pair = test::connected_tcp_v4();
    auto got = read_all(pair.server);
    EXPECT_EQ(pair.client.sendfile(f.fd.get()), content.size());
    pair.client.shutdown(sock::shut::wr);
    EXPECT_EQ(got.get(), content);
    EXPECT_EQ(f.position(), static_cast<::off_t>(content.size()));
}

TEST(Sendfile, OffsetAndCountOverUnixStream) {
    const std::string content = pattern(20000);
    temp_file f(content);
    auto [a, b] = sock::socketpair();
    EXPECT_EQ(a.sendfile(f.fd.get(), 1000, 5000), 5000u);
    EXPECT_EQ(f.position(), 6000);
    a.shutdown(sock::shut::wr);
    std::string all;
    for (std::string c; !(c = b.recv(65536)).empty();) all += c;
    EXPECT_EQ(all, content.substr(1000, 5000));
}

TEST(Sendfile, CountPastTheEndStopsThere) {
    temp_file f(pattern(100));
    auto [a, b] = sock::socketpair();
    EXPECT_EQ(a.sendfile(f.fd.get(), 90, 1000), 10u);
    EXPECT_EQ(f.position(), 100);
    EXPECT_EQ(b.recv(100), pattern(100).substr(90));
    EXPECT_EQ(a.sendfile(f.fd.get(), 100), 0u);
    EXPECT_EQ(a.sendfile(f.fd.get(), 5000), 0u);
}

TEST(Sendfile, ByPath) {
    const std::string content = pattern(4096);
    temp_file f(content);
    auto [a, b] = sock::socketpair();
    EXPECT_EQ(a.sendfile(f.path, 96), 4000u);
    a.shutdown(sock::shut::wr);
    std::string all;
    for (std::string c; !(c = b.recv(65536)).empty();) all += c;
    EXPECT_EQ(all, content.substr(96));
}

TEST(Sendfile, MissingPathNamesIt) {
    test::temp_dir dir;
    auto [a, b] = sock::socketpair();
    const std::string path = dir.file("missing");
    auto t = capture([&, &a = a] { (void)a.sendfile(path); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name();
    EXPECT_EQ(t.what, "sendfile " + path + ": No such file or directory");
    std::error_code ec;
    EXPECT_EQ(a.sendfile(path, 0, std::nullopt, ec), 0u);
    EXPECT_EQ(ec, std::errc::no_such_file_or_directory);
}

TEST(Sendfile, PipeFallsBackToReadAndSend) {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    sock::owned_fd r(p[0]), w(p[1]);
    const std::string content = pattern(50000);  // fits in the pipe's 64 KiB
    ASSERT_EQ(::write(w.get(), content.data(), content.size()),
              static_cast<::ssize_t>(content.size()));
    w.close();
    auto [a, b] = sock::socketpair();
    a.settimeout(30.0);
    auto got = read_all(b);
    EXPECT_EQ(a.sendfile(r.get()), content.size());
    a.shutdown(sock::shut::wr);
    EXPECT_EQ(got.get(), content);
}

TEST(Sendfile, PipeWithAnOffsetIsAnInvalidSeek) {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    sock::owned_fd r(p[0]), w(p[1]);
    auto [a, b] = sock::socketpair();
    std::error_code ec;
    EXPECT_EQ(a.sendfile(r.get(), 10, std::nullopt, ec), 0u);
    EXPECT_EQ(ec, std::errc::invalid_seek);
}

TEST(Sendfile, DatagramSocketFallsBack) {
    temp_file f(pattern(100));
    auto [a, b] = sock::socketpair(sock::family::local, sock::kind::dgram);
    EXPECT_EQ(a.sendfile(f.fd.get(), 0, 60), 60u);
    EXPECT_EQ(b.recv(1000), pattern(100).substr(0, 60));
    EXPECT_EQ(f.position(), 60);
}

TEST(Sendfile, TimeoutWaitsBetweenPartialSends) {
    // Far more than the socket buffers hold: sendfile(2) must stop, wait for the reader, go on.
    const std::string content = pattern(4 << 20);
    temp_file f(content);
    auto [a, b] = sock::socketpair();
    a.setsockopt(SOL_SOCKET, SO_SNDBUF, 4096);
    a.settimeout(30.0);
    auto got = read_all(b);
    EXPECT_EQ(a.sendfile(f.fd.get()), content.size());
    a.shutdown(sock::shut::wr);
    EXPECT_EQ(got.get(), content);
}

TEST(Sendfile, TimeoutWithNobodyReading) {
    temp_file f(pattern(8 << 20));
    auto [a, b] = sock::socketpair();
    a.settimeout(0.02);
    std::error_code ec;
    const auto sent = a.sendfile(f.fd.get(), 0, std::nullopt, ec);
    EXPECT_EQ(ec, std::errc::timed_out);
    EXPECT_GT(sent, 0u);
    EXPECT_LT(sent, std::size_t{8} << 20);
    EXPECT_EQ(f.position(), static_cast<::off_t>(sent));  // reports how far it got
    auto t = capture([&, &a = a] { (void)a.sendfile(f.fd.get(), sent); });
    ASSERT_TRUE(t.is<sock::timeout>()) << t.type_name() << " " << t.what;
    EXPECT_TRUE(test::starts_with(t.what, "sendfile ")) << t.what;
    EXPECT_TRUE(test::ends_with(t.what, ": timed out")) << t.what;
}

TEST(Sendfile, NonBlockingSocketIsRejected) {
    temp_file f(pattern(10));
    auto [a, b] = sock::socketpair();
    a.setblocking(false);
    auto t = capture([&, &a = a] { (void)a.sendfile(f.fd.get()); });
    ASSERT_TRUE(t.is<std::invalid_argument>()) << t.type_name();
    EXPECT_EQ(t.what, "sendfile: non-blocking sockets are not supported");
    std::error_code ec;
    EXPECT_EQ(a.sendfile(f.fd.get(), 0, std::nullopt, ec), 0u);
    EXPECT_EQ(ec, std::errc::invalid_argument);
}

TEST(Sendfile, ClosedPeerIsEpipeNotSigpipe) {
    temp_file f(pattern(1000));
    auto [a, b] = sock::socketpair();
    b.close();
    std::error_code ec;
    EXPECT_EQ(a.sendfile(f.fd.get(), 0, std::nullopt, ec), 0u);
    EXPECT_EQ(ec, std::errc::broken_pipe);
    EXPECT_EQ(f.position(), 0);
    // The signal sendfile(2) raised is neither left pending nor left blocked.
    sigset_t set;
    sigemptyset(&set);
    ASSERT_EQ(::sigpending(&set), 0);
    EXPECT_EQ(sigismember(&set, SIGPIPE), 0);
    ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, nullptr, &set), 0);
    EXPECT_EQ(sigismember(&set, SIGPIPE), 0);
}

}  // namespace
