#include <sock/systemd.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace sock SOCK_API {

namespace {

// sd_listen_fds(3): the first passed descriptor; 0, 1 and 2 stay stdin, stdout and stderr.
constexpr int first_fd = 3;

std::optional<std::string> env(const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr) return std::nullopt;
    return std::string(value);
}

// A plain decimal number in [min, max]: no sign, no space, no trailing text (what the
// manager writes; anything else is not its doing and must not be half-understood).
std::optional<std::uint64_t> whole_number(const std::string& text, std::uint64_t min,
                                          std::uint64_t max) {
    std::uint64_t n = 0;
    const char* end = text.data() + text.size();
    const auto [p, ec] = std::from_chars(text.data(), end, n);
    if (text.empty() || ec != std::errc{} || p != end || n < min || n > max) return std::nullopt;
    return n;
}

[[noreturn]] void garbage(const char* name, const std::string& value, const std::string& why) {
    throw std::invalid_argument(std::string(name) + "=" + value + ": " + why);
}

std::vector<std::string> split_names(const std::string& text) {
    std::vector<std::string> names;
    std::size_t start = 0;
    for (;;) {
        const std::size_t colon = text.find(':', start);
        names.push_back(text.substr(start, colon - start));
        if (colon == std::string::npos) return names;
        start = colon + 1;
    }
}

// The Unix address of $NOTIFY_SOCKET: a path, or an abstract name written with '@'.
bool notify_address(const std::string& where, ::sockaddr_un& sa, ::socklen_t& len) noexcept {
    if (where.size() < 2 || (where[0] != '/' && where[0] != '@')) return false;
    if (where.size() >= sizeof sa.sun_path) return false;
    sa = {};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, where.data(), where.size());
    // An abstract name is the bytes after a leading NUL, with no terminator counted.
    if (where[0] == '@') sa.sun_path[0] = '\0';
    len = static_cast<::socklen_t>(offsetof(::sockaddr_un, sun_path) + where.size() +
                                   (where[0] == '/' ? 1 : 0));
    return true;
}

std::error_code send_state(const std::string& where, std::string_view state) noexcept {
    ::sockaddr_un sa;
    ::socklen_t len = 0;
    if (!notify_address(where, sa, len)) return std::make_error_code(std::errc::invalid_argument);
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return {errno, std::system_category()};
    ::ssize_t sent;
    do {
        sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                        reinterpret_cast<const ::sockaddr*>(&sa), len);
    } while (sent < 0 && errno == EINTR);
    const int e = sent < 0 ? errno : 0;
    ::close(fd);
    if (e != 0) return {e, std::system_category()};
    // A datagram goes whole or not at all; a short count would be a kernel surprise.
    if (static_cast<std::size_t>(sent) != state.size()) return std::make_error_code(std::errc::message_size);
    return {};
}

}  // namespace

std::vector<inherited_socket> listen_fds() {
    // Copies before unsetenv, which frees what getenv returned.
    const auto pid = env("LISTEN_PID");
    const auto count = env("LISTEN_FDS");
    const auto names = env("LISTEN_FDNAMES");
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    if (!pid) return {};
    const auto owner = whole_number(*pid, 1, INT_MAX);
    if (!owner) garbage("LISTEN_PID", *pid, "not a process id (socket activation)");
    // Meant for another process (a parent that was activated and started us): not ours.
    if (static_cast<::pid_t>(*owner) != ::getpid()) return {};
    if (!count) return {};
    const auto n = whole_number(*count, 1, INT_MAX - first_fd);
    if (!n) garbage("LISTEN_FDS", *count, "not a number of descriptors above 0 (socket activation)");

    std::vector<std::string> given(*n, "unknown");
    if (names) {
        given = split_names(*names);
        if (given.size() != *n)
            garbage("LISTEN_FDNAMES", *names,
                    std::to_string(given.size()) + " name(s) for LISTEN_FDS=" + *count);
    }
    // Every descriptor is checked before any is owned: on an error none is closed behind the
    // caller's back, and the ones that are fine are close-on-exec all the same.
    struct kind_of {
        int domain = 0, type = 0, protocol = 0;
    };
    std::vector<kind_of> kinds(*n);
    for (std::size_t i = 0; i < *n; ++i) {
        const int fd = first_fd + static_cast<int>(i);
        const std::string where = "socket activation: fd " + std::to_string(fd) + " (LISTEN_FDS=" +
                                  *count + ")";
        const int flags = ::fcntl(fd, F_GETFD);
        if (flags < 0 || ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
            throw_error({errno, std::system_category()}, where);
        int* values[3] = {&kinds[i].domain, &kinds[i].type, &kinds[i].protocol};
        const int options[3] = {SO_DOMAIN, SO_TYPE, SO_PROTOCOL};
        for (int k = 0; k < 3; ++k) {
            ::socklen_t len = sizeof(int);
            if (::getsockopt(fd, SOL_SOCKET, options[k], values[k], &len) < 0)
                throw_error({errno, std::system_category()}, where);
        }
    }
    std::vector<inherited_socket> result;
    result.reserve(*n);
    for (std::size_t i = 0; i < *n; ++i) {
        const int fd = first_fd + static_cast<int>(i);
        const bool nonblocking = (::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
        result.push_back({socket::adopt(fd, static_cast<sock::family>(kinds[i].domain),
                                        static_cast<sock::kind>(kinds[i].type), kinds[i].protocol,
                                        nonblocking),
                          std::move(given[i])});
    }
    return result;
}

bool notify(std::string_view state, std::error_code& ec) noexcept {
    ec.clear();
    const char* where = std::getenv("NOTIFY_SOCKET");
    if (where == nullptr) return false;
    try {
        ec = send_state(where, state);
    } catch (...) {  // std::string's allocation
        ec = std::make_error_code(std::errc::not_enough_memory);
    }
    return !ec;
}

bool notify(std::string_view state) {
    const auto where = env("NOTIFY_SOCKET");
    if (!where) return false;
    const std::error_code ec = send_state(*where, state);
    if (ec == std::errc::invalid_argument)
        garbage("NOTIFY_SOCKET", *where, "not a Unix socket path ('/...') or abstract name ('@...')");
    if (ec) throw_error(ec, "notify " + *where);
    return true;
}

std::optional<std::chrono::microseconds> watchdog_interval() {
    if (const auto pid = env("WATCHDOG_PID")) {
        const auto owner = whole_number(*pid, 1, INT_MAX);
        if (!owner) garbage("WATCHDOG_PID", *pid, "not a process id (watchdog)");
        if (static_cast<::pid_t>(*owner) != ::getpid()) return std::nullopt;
    }
    const auto usec = env("WATCHDOG_USEC");
    if (!usec) return std::nullopt;
    const auto n = whole_number(*usec, 1, std::uint64_t(INT64_MAX) / 1000);
    if (!n) garbage("WATCHDOG_USEC", *usec, "not a number of microseconds above 0 (watchdog)");
    return std::chrono::microseconds(static_cast<std::int64_t>(*n));
}

}  // namespace sock
