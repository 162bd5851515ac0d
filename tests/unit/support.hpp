#pragma once

// Helpers shared by the unit tests: temp dirs, unique abstract names, descriptor probes.
// Everything here uses the C API directly, so a broken library cannot fake a skip or a pass.

#include <sock/sock.hpp>

#include "capture.hpp"
#include "private_system.hpp"
#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <typeinfo>

namespace sock {
// Lets gtest print addresses in failure messages.
inline void PrintTo(const address& a, std::ostream* os) {
    *os << '"' << a.to_string() << '"';
}
}  // namespace sock

namespace test {


/// "@sock-unit-<pid>-<n>-<tag>": an abstract Unix name no other test process can pick.
inline std::string abstract_name(std::string_view tag) {
    static std::atomic<int> counter{0};
    return "@sock-unit-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
           std::string(tag);
}

/// True when fd is an open descriptor of this process.
inline bool fd_is_open(int fd) {
    errno = 0;
    return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

inline bool fd_is_cloexec(int fd) {
    int flags = ::fcntl(fd, F_GETFD);
    return flags != -1 && (flags & FD_CLOEXEC) != 0;
}

inline bool fd_is_nonblocking(int fd) {
    int flags = ::fcntl(fd, F_GETFL);
    return flags != -1 && (flags & O_NONBLOCK) != 0;
}

/// True when this host can bind a TCP socket to [::1] (checked without the library).
inline bool ipv6_loopback_available() {
    int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    ::sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_addr = in6addr_loopback;
    bool ok = ::bind(fd, reinterpret_cast<const ::sockaddr*>(&sa), sizeof sa) == 0;
    ::close(fd);
    return ok;
}

#define SKIP_WITHOUT_IPV6()                                                      \
    do {                                                                         \
        if (!::test::ipv6_loopback_available()) GTEST_SKIP() << "no [::1] here"; \
    } while (0)

/// A listening TCP socket on 127.0.0.1 with a kernel-chosen port.
inline sock::socket listener_v4(int backlog = 16) {
    sock::socket s(sock::family::inet, sock::kind::stream);
    s.bind(sock::address("127.0.0.1", 0));
    s.listen(backlog);
    return s;
}

/// A TCP socket bound to 127.0.0.1 but not listening: connecting to its port is refused,
/// and no other process can take the port while it lives.
inline sock::socket refusing_v4() {
    sock::socket s(sock::family::inet, sock::kind::stream);
    s.bind(sock::address("127.0.0.1", 0));
    return s;
}

/// A connected TCP pair over 127.0.0.1: {client, server side}.
struct tcp_pair {
    sock::socket client;
    sock::socket server;
};
inline tcp_pair connected_tcp_v4() {
    sock::socket l = listener_v4();
    sock::socket c(sock::family::inet, sock::kind::stream);
    c.connect(l.getsockname());
    auto accepted = l.accept();
    return {std::move(c), std::move(accepted.first)};
}

/// Two TCP sockets bound (not listening) to hosts a and b on one kernel-chosen port.
/// 127.0.0.1 is the busy address, so its port is picked first; a collision on the other
/// address (another process holding that port there) is retried with a new port.
inline std::pair<sock::socket, sock::socket> same_port(const std::string& a, const std::string& b) {
    for (int attempt = 0;; ++attempt) {
        sock::socket sa(sock::family::inet, sock::kind::stream);
        sock::socket sb(sock::family::inet, sock::kind::stream);
        const bool a_picks = a == "127.0.0.1";
        sock::socket& picker = a_picks ? sa : sb;
        sock::socket& follower = a_picks ? sb : sa;
        picker.bind(sock::address(a_picks ? a : b, 0));
        const std::uint16_t port = picker.getsockname().port();
        std::error_code ec;
        follower.bind(sock::address(a_picks ? b : a, port), ec);
        if (!ec) return {std::move(sa), std::move(sb)};
        if (ec != std::errc::address_in_use || attempt == 50) throw sock::error(ec, "bind");
    }
}

/// Deterministic filler of n bytes that does not repeat with a short period.
inline std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 251) % 256);
    return s;
}

inline bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
inline bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

}  // namespace test

/// Runs the body (a callable) in a forked child that sees `hosts` as /etc/hosts.
#define RUN_WITH_HOSTS(hosts, ...) \
    RUN_IN_PRIVATE_SYSTEM((std::map<std::string, std::string>{{"/etc/hosts", hosts}}), false, __VA_ARGS__)
