#include <sock/socket.hpp>

#include "wait.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace sock SOCK_API {

namespace {

std::atomic<std::int64_t> default_timeout_ns{-1};  // -1: none (blocking)

std::error_code last_error() noexcept { return {errno, std::system_category()}; }

bool would_block(int e) noexcept { return e == EAGAIN || e == EWOULDBLOCK; }

std::error_code set_nonblocking(int fd, bool on) noexcept {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0) return last_error();
    const int wanted = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
    if (wanted != flags && ::fcntl(fd, F_SETFL, wanted) < 0) return last_error();
    return {};
}

const char* family_name(sock::family f) {
    switch (f) {
    case sock::family::inet: return "inet";
    case sock::family::inet6: return "inet6";
    case sock::family::local: return "unix";
    case sock::family::unspec: return "unspec";
    }
    return "?";
}

const char* kind_name(sock::kind k) {
    switch (k) {
    case sock::kind::stream: return "stream";
    case sock::kind::dgram: return "dgram";
    case sock::kind::raw: return "raw";
    case sock::kind::seqpacket: return "seqpacket";
    }
    return "?";
}

struct native {
    ::sockaddr_storage ss{};
    ::socklen_t len = 0;
    const ::sockaddr* sa() const noexcept { return reinterpret_cast<const ::sockaddr*>(&ss); }
};

// The kernel addresses of the socket's family for addr, in resolver order; names go through
// getaddrinfo, and `passive` makes "" mean "any address" (for bind).
std::error_code resolve(const address& addr, sock::family fam, sock::kind type, bool passive,
                        std::vector<native>& out) {
    out.clear();
    native n;
    if (addr.empty()) return std::make_error_code(std::errc::destination_address_required);
    if (addr.to_native(n.ss, n.len)) {
        if (n.ss.ss_family == static_cast<int>(fam)) {
            out.push_back(n);
            return {};
        }
        if (addr.is_unix() || fam == sock::family::local)
            return std::make_error_code(std::errc::address_family_not_supported);
    } else if (addr.is_unix()) {
        return std::make_error_code(std::errc::filename_too_long);
    }
    // Raw and seqpacket types are unknown to getaddrinfo's service table; ask for any type.
    const auto hint_type = type == sock::kind::stream || type == sock::kind::dgram ? type
                                                                                 : sock::kind{};
    std::error_code ec;
    const auto infos = getaddrinfo(addr.host(), addr.port(), fam, hint_type,
                                   passive ? AI_PASSIVE : 0, ec);
    if (ec) return ec;
    for (const auto& info : infos) {
        if (info.addr.to_native(n.ss, n.len) && n.ss.ss_family == static_cast<int>(fam)) {
            if (std::none_of(out.begin(), out.end(), [&](const native& o) {
                    return o.len == n.len && std::memcmp(&o.ss, &n.ss, n.len) == 0;
                }))
                out.push_back(n);
        }
    }
    if (out.empty()) return std::error_code(EAI_NONAME, gai_category());
    return {};
}

// The first kernel address of the socket's family for addr.
std::error_code resolve_one(const address& addr, sock::family fam, sock::kind type, bool passive,
                            native& out) {
    std::vector<native> all;
    if (auto ec = resolve(addr, fam, type, passive, all)) return ec;
    out = all.front();
    return {};
}

}  // namespace

void setdefaulttimeout(timeout_t t) {
    if (t && t->count() < 0) throw std::invalid_argument("setdefaulttimeout: timeout must be >= 0");
    default_timeout_ns.store(t ? t->count() : -1, std::memory_order_relaxed);
}

timeout_t getdefaulttimeout() noexcept {
    const auto ns = default_timeout_ns.load(std::memory_order_relaxed);
    if (ns < 0) return std::nullopt;
    return std::chrono::nanoseconds(ns);
}

// -- lifetime ---------------------------------------------------------------------------------

socket::socket(sock::family fam, sock::kind type, int proto)
    : family_(fam), type_(type), proto_(proto) {
    fd_ = ::socket(static_cast<int>(fam), static_cast<int>(type) | SOCK_CLOEXEC, proto);
    if (fd_ < 0) {
        throw_error(last_error(), std::string("socket(") + family_name(fam) + ", " +
                                      kind_name(type) + ")");
    }
    if (auto t = getdefaulttimeout()) settimeout(t);
}

socket socket::from_fd(int fd) {
    int values[3] = {};
    const int names[3] = {SO_DOMAIN, SO_TYPE, SO_PROTOCOL};
    for (int i = 0; i < 3; ++i) {
        ::socklen_t len = sizeof values[i];
        if (::getsockopt(fd, SOL_SOCKET, names[i], &values[i], &len) < 0)
            throw_error(last_error(), "adopt fd " + std::to_string(fd));
    }
    socket s(adopt_tag{}, fd, static_cast<sock::family>(values[0]),
             static_cast<sock::kind>(values[1]), values[2]);
    // The descriptor keeps the mode it came with: non-blocking means timeout zero.
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK) != 0) s.timeout_ = std::chrono::nanoseconds(0);
    return s;
}

socket& socket::operator=(socket&& other) noexcept {
    if (this != &other) {
        close();
        fd_ = std::exchange(other.fd_, -1);
        family_ = other.family_;
        type_ = other.type_;
        proto_ = other.proto_;
        timeout_ = other.timeout_;
    }
    return *this;
}

void socket::close() noexcept {
    // Never retry close on EINTR: on Linux the descriptor is already gone and may be reused.
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

int socket::detach() noexcept { return std::exchange(fd_, -1); }

socket socket::dup(std::error_code& ec) const {
    const int fd = ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        ec = last_error();
        return invalid();
    }
    ec.clear();
    // The copy shares the open file, O_NONBLOCK included, so the same timeout stays true.
    socket copy(adopt_tag{}, fd, family_, type_, proto_);
    copy.timeout_ = timeout_;
    return copy;
}

socket socket::dup() const {
    std::error_code ec;
    auto copy = dup(ec);
    if (ec) fail(ec, "dup");
    return copy;
}

// -- errors -----------------------------------------------------------------------------------

std::string socket::describe() const {
    std::error_code ec;
    auto named = [](const address& a) { return !a.empty() && !(a.is_unix() && a.path().empty()); };
    if (auto peer = getpeername(ec); !ec && named(peer)) return peer.to_string();
    // After a reset the peer is gone; name our own end, and say so.
    if (auto local = getsockname(ec); !ec && named(local)) return "local " + local.to_string();
    return "fd " + std::to_string(fd_);
}

void socket::fail(std::error_code ec, const char* call) const {
    throw_error(ec, std::string(call) + " " + describe());
}

void socket::fail(std::error_code ec, const char* call, const address& addr) const {
    throw_error(ec, std::string(call) + " " + addr.to_string());
}

// -- the calls --------------------------------------------------------------------------------

namespace {

// Runs a system call with the socket's timeout semantics: retried on EINTR; on would-block,
// waits for readiness until the deadline when the timeout is positive.
template <class Call>
auto retry(int fd, const timeout_t& timeout, short events, detail::deadline_t deadline,
           std::error_code& ec, Call call) noexcept -> decltype(call()) {
    for (;;) {
        const auto rc = call();
        if (rc >= 0) {
            ec.clear();
            return rc;
        }
        const int e = errno;
        if (e == EINTR) continue;
        if (would_block(e) && timeout && timeout->count() > 0) {
            ec = detail::wait_ready(fd, events, deadline);
            if (ec) return rc;
            continue;
        }
        ec = {e, std::system_category()};
        return rc;
    }
}

detail::deadline_t deadline_of(const timeout_t& t) noexcept {
    if (!t || t->count() <= 0) return std::nullopt;
    return detail::clock::now() + *t;
}

}  // namespace

void socket::bind(const address& addr, std::error_code& ec) noexcept {
    native n;
    try {
        ec = resolve_one(addr, family_, type_, true, n);
    } catch (const std::bad_alloc&) {
        ec = std::make_error_code(std::errc::not_enough_memory);
    }
    if (ec) return;
    ec = ::bind(fd_, n.sa(), n.len) < 0 ? last_error() : std::error_code{};
}

void socket::bind(const address& addr) {
    native n;
    std::error_code ec = resolve_one(addr, family_, type_, true, n);
    if (ec) fail(ec, "bind", addr);
    if (::bind(fd_, n.sa(), n.len) < 0) fail(last_error(), "bind", address::from_native(n.sa(), n.len));
}

void socket::listen(int backlog, std::error_code& ec) noexcept {
    ec = ::listen(fd_, backlog) < 0 ? last_error() : std::error_code{};
}

void socket::listen(int backlog) {
    std::error_code ec;
    listen(backlog, ec);
    if (ec) fail(ec, "listen");
}

std::pair<socket, address> socket::accept(std::error_code& ec) {
    native n;
    n.len = sizeof n.ss;
    const int fd = retry(fd_, timeout_, POLLIN, deadline_of(timeout_), ec, [&] {
        n.len = sizeof n.ss;
        return ::accept4(fd_, reinterpret_cast<::sockaddr*>(&n.ss), &n.len, SOCK_CLOEXEC);
    });
    if (ec) return {invalid(), address{}};
    socket conn(adopt_tag{}, fd, family_, type_, proto_);
    if (auto t = getdefaulttimeout()) {
        conn.timeout_ = t;
        if ((ec = set_nonblocking(fd, true))) return {invalid(), address{}};
    }
    return {std::move(conn), address::from_native(n.sa(), n.len)};
}

std::pair<socket, address> socket::accept() {
    std::error_code ec;
    auto result = accept(ec);
    if (ec) fail(ec, "accept");
    return result;
}

void socket::connect_one(const ::sockaddr* sa, ::socklen_t len, std::error_code& ec) noexcept {
    if (::connect(fd_, sa, len) == 0) {
        ec.clear();
        return;
    }
    const int e = errno;
    // EINTR leaves the connection going on in the background, as EINPROGRESS does.
    const bool in_progress = e == EINPROGRESS || e == EINTR;
    if (!in_progress || (timeout_ && timeout_->count() == 0)) {
        ec = {e, std::system_category()};
        return;
    }
    ec = detail::wait_ready(fd_, POLLOUT, deadline_of(timeout_));
    if (ec) return;
    int err = 0;
    ::socklen_t err_len = sizeof err;
    if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &err_len) < 0) err = errno;
    ec = err != 0 ? std::error_code(err, std::system_category()) : std::error_code{};
}

namespace {
// Whether connect may go on to a name's next address after this failure: not after a
// timeout (the deadline covers the whole call) nor a non-blocking start.
bool try_next(std::error_code ec) noexcept {
    return ec != std::errc::timed_out && ec != std::errc::operation_in_progress &&
           ec != std::errc::resource_unavailable_try_again;
}
}  // namespace

void socket::connect(const address& addr, std::error_code& ec, address* failed) {
    std::vector<native> all;
    ec = resolve(addr, family_, type_, false, all);
    if (ec) return;
    // Like create_connection, but on this one socket: Linux lets a socket whose connect
    // failed connect again once an AF_UNSPEC connect has dissolved the failed attempt.
    for (const auto& n : all) {
        if (&n != &all.front()) {
            ::sockaddr unspec{};
            unspec.sa_family = AF_UNSPEC;
            ::connect(fd_, &unspec, sizeof unspec);
        }
        connect_one(n.sa(), n.len, ec);
        if (!ec) return;
        if (failed != nullptr) *failed = address::from_native(n.sa(), n.len);
        if (!try_next(ec)) return;
    }
}

void socket::connect(const address& addr, std::error_code& ec) { connect(addr, ec, nullptr); }

void socket::connect(const address& addr) {
    std::error_code ec;
    address failed;
    connect(addr, ec, &failed);
    if (ec) fail(ec, "connect", failed.empty() ? addr : failed);
}

std::error_code socket::connect_ex(const address& addr) {
    std::error_code ec;
    connect(addr, ec);
    return ec;
}

std::size_t socket::send(std::string_view data, int flags, std::error_code& ec) noexcept {
    const auto n = retry(fd_, timeout_, POLLOUT, deadline_of(timeout_), ec, [&] {
        return ::send(fd_, data.data(), data.size(), flags | MSG_NOSIGNAL);
    });
    return ec ? 0 : static_cast<std::size_t>(n);
}

std::size_t socket::send(std::string_view data, int flags) {
    std::error_code ec;
    const auto n = send(data, flags, ec);
    if (ec) fail(ec, "send");
    return n;
}

std::size_t socket::sendall(std::string_view data, int flags, std::error_code& ec) noexcept {
    const auto deadline = deadline_of(timeout_);  // one deadline for the whole call
    std::size_t sent = 0;
    ec.clear();
    while (sent < data.size()) {
        const auto n = retry(fd_, timeout_, POLLOUT, deadline, ec, [&] {
            return ::send(fd_, data.data() + sent, data.size() - sent, flags | MSG_NOSIGNAL);
        });
        if (ec) break;
        sent += static_cast<std::size_t>(n);
    }
    return sent;
}

void socket::sendall(std::string_view data, int flags) {
    std::error_code ec;
    sendall(data, flags, ec);
    if (ec) fail(ec, "sendall");
}

std::size_t socket::recv_into(std::span<char> buf, int flags, std::error_code& ec) noexcept {
    const auto n = retry(fd_, timeout_, POLLIN, deadline_of(timeout_), ec,
                         [&] { return ::recv(fd_, buf.data(), buf.size(), flags); });
    return ec ? 0 : static_cast<std::size_t>(n);
}

std::size_t socket::recv_into(std::span<char> buf, int flags) {
    std::error_code ec;
    const auto n = recv_into(buf, flags, ec);
    if (ec) fail(ec, "recv");
    return n;
}

std::size_t socket::recv_into(std::span<std::byte> buf, int flags) {
    return recv_into(std::span<char>(reinterpret_cast<char*>(buf.data()), buf.size()), flags);
}

std::string socket::recv(std::size_t max, int flags, std::error_code& ec) {
    std::string out(max, '\0');
    out.resize(recv_into(out, flags, ec));
    return out;
}

std::string socket::recv(std::size_t max, int flags) {
    std::string out(max, '\0');
    out.resize(recv_into(out, flags));
    return out;
}

std::size_t socket::sendto(std::string_view data, const address& addr, int flags,
                           std::error_code& ec) {
    native n;
    ec = resolve_one(addr, family_, type_, false, n);
    if (ec) return 0;
    const auto sent = retry(fd_, timeout_, POLLOUT, deadline_of(timeout_), ec, [&] {
        return ::sendto(fd_, data.data(), data.size(), flags | MSG_NOSIGNAL, n.sa(), n.len);
    });
    return ec ? 0 : static_cast<std::size_t>(sent);
}

std::size_t socket::sendto(std::string_view data, const address& addr, int flags) {
    std::error_code ec;
    const auto n = sendto(data, addr, flags, ec);
    if (ec) fail(ec, "sendto", addr);
    return n;
}

std::pair<std::size_t, address> socket::recvfrom_into(std::span<char> buf, int flags,
                                                      std::error_code& ec) noexcept {
    native n;
    const auto got = retry(fd_, timeout_, POLLIN, deadline_of(timeout_), ec, [&] {
        n.len = sizeof n.ss;
        return ::recvfrom(fd_, buf.data(), buf.size(), flags, reinterpret_cast<::sockaddr*>(&n.ss),
                          &n.len);
    });
    if (ec) return {0, address{}};
    try {
        return {static_cast<std::size_t>(got), address::from_native(n.sa(), n.len)};
    } catch (const std::bad_alloc&) {
        ec = std::make_error_code(std::errc::not_enough_memory);
        return {0, address{}};
    }
}

std::pair<std::size_t, address> socket::recvfrom_into(std::span<char> buf, int flags) {
    std::error_code ec;
    auto result = recvfrom_into(buf, flags, ec);
    if (ec) fail(ec, "recvfrom");
    return result;
}

std::pair<std::string, address> socket::recvfrom(std::size_t max, int flags, std::error_code& ec) {
    std::string data(max, '\0');
    auto [n, from] = recvfrom_into(data, flags, ec);
    data.resize(n);
    return {std::move(data), std::move(from)};
}

std::pair<std::string, address> socket::recvfrom(std::size_t max, int flags) {
    std::string data(max, '\0');
    auto [n, from] = recvfrom_into(data, flags);
    data.resize(n);
    return {std::move(data), std::move(from)};
}

void socket::shutdown(shut how, std::error_code& ec) noexcept {
    ec = ::shutdown(fd_, static_cast<int>(how)) < 0 ? last_error() : std::error_code{};
}

void socket::shutdown(shut how) {
    std::error_code ec;
    shutdown(how, ec);
    if (ec) fail(ec, "shutdown");
}

// -- messages with ancillary data -------------------------------------------------------------

void owned_fd::close() noexcept {
    // As socket::close: never retried, the number may already belong to someone else.
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

namespace {

// A control buffer aligned for cmsghdr, of at least `bytes` bytes.
struct control_buffer {
    std::vector<::cmsghdr> storage;
    explicit control_buffer(std::size_t bytes)
        : storage((bytes + sizeof(::cmsghdr) - 1) / sizeof(::cmsghdr)) {}
    void* data() noexcept { return storage.empty() ? nullptr : storage.data(); }
};

// The iovecs of buffers; sendmsg only reads through them.
std::vector<::iovec> iovecs_of(std::span<const std::string_view> buffers) {
    std::vector<::iovec> iov;
    iov.reserve(buffers.size());
    for (const auto b : buffers) iov.push_back({const_cast<char*>(b.data()), b.size()});
    return iov;
}

std::size_t control_space(std::span<const ancillary> ancdata) noexcept {
    std::size_t space = 0;
    for (const auto& a : ancdata) space += CMSG_SPACE(a.data.size());
    return space;
}

// Writes the items into msg's control buffer, which has room for control_space of them.
void fill_control(::msghdr& msg, std::span<const ancillary> ancdata) noexcept {
    auto* cmsg = CMSG_FIRSTHDR(&msg);
    for (const auto& a : ancdata) {
        cmsg->cmsg_level = a.level;
        cmsg->cmsg_type = a.type;
        cmsg->cmsg_len = CMSG_LEN(a.data.size());
        if (!a.data.empty()) std::memcpy(CMSG_DATA(cmsg), a.data.data(), a.data.size());
        cmsg = CMSG_NXTHDR(&msg, cmsg);
    }
}

// Calls fn(level, type, data, size) for each item recvmsg left in msg; an item the kernel cut
// short (MSG_CTRUNC) is given with the bytes that arrived.
template <class Fn>
void for_each_item(const ::msghdr& msg, Fn fn) {
    if (msg.msg_control == nullptr) return;
    const auto* end = static_cast<const unsigned char*>(msg.msg_control) + msg.msg_controllen;
    for (auto* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr;
         cmsg = CMSG_NXTHDR(const_cast<::msghdr*>(&msg), cmsg)) {
        const unsigned char* data = CMSG_DATA(cmsg);
        if (cmsg->cmsg_len < CMSG_LEN(0) || data > end) break;
        const std::size_t size = std::min<std::size_t>(cmsg->cmsg_len - CMSG_LEN(0),
                                                       static_cast<std::size_t>(end - data));
        fn(cmsg->cmsg_level, cmsg->cmsg_type, data, size);
    }
}

}  // namespace

std::size_t socket::sendmsg(std::span<const std::string_view> buffers,
                            std::span<const ancillary> ancdata, int flags, const address& addr,
                            std::error_code& ec) {
    native to;
    if (!addr.empty() && (ec = resolve_one(addr, family_, type_, false, to))) return 0;
    auto iov = iovecs_of(buffers);
    const std::size_t space = control_space(ancdata);
    control_buffer control(space);
    ::msghdr msg{};
    if (!addr.empty()) {
        msg.msg_name = &to.ss;
        msg.msg_namelen = to.len;
    }
    msg.msg_iov = iov.data();
    msg.msg_iovlen = iov.size();
    if (space > 0) {
        msg.msg_control = control.data();
        msg.msg_controllen = space;
        fill_control(msg, ancdata);
    }
    const auto n = retry(fd_, timeout_, POLLOUT, deadline_of(timeout_), ec,
                         [&] { return ::sendmsg(fd_, &msg, flags | MSG_NOSIGNAL); });
    return ec ? 0 : static_cast<std::size_t>(n);
}

std::size_t socket::sendmsg(std::span<const std::string_view> buffers,
                            std::span<const ancillary> ancdata, int flags, const address& addr) {
    std::error_code ec;
    const auto n = sendmsg(buffers, ancdata, flags, addr, ec);
    if (ec && addr.empty()) fail(ec, "sendmsg");
    if (ec) fail(ec, "sendmsg", addr);
    return n;
}

namespace {

// One recvmsg with the socket's timeout into data and control; msg names the sender.
::ssize_t receive(int fd, const timeout_t& timeout, std::string& data, control_buffer& control,
                  std::size_t control_size, native& from, ::msghdr& msg, int flags,
                  std::error_code& ec) noexcept {
    ::iovec iov{data.data(), data.size()};
    return retry(fd, timeout, POLLIN, deadline_of(timeout), ec, [&] {
        // The kernel rewrites these lengths: set them again for every try.
        msg = {};
        msg.msg_name = &from.ss;
        msg.msg_namelen = sizeof from.ss;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control_size > 0 ? control.data() : nullptr;
        msg.msg_controllen = control_size;
        // Descriptors arrive close-on-exec, as every descriptor this library makes.
        return ::recvmsg(fd, &msg, flags | MSG_CMSG_CLOEXEC);
    });
}

}  // namespace

message socket::recvmsg(std::size_t bufsize, std::size_t ancbufsize, int flags,
                        std::error_code& ec) {
    message out;
    out.data.resize(bufsize);
    control_buffer control(ancbufsize);
    native from;
    ::msghdr msg{};
    const auto n = receive(fd_, timeout_, out.data, control, ancbufsize, from, msg, flags, ec);
    if (ec) return {};
    out.data.resize(static_cast<std::size_t>(n));
    for_each_item(msg, [&](int level, int type, const unsigned char* data, std::size_t size) {
        out.ancdata.push_back({level, type, std::string(reinterpret_cast<const char*>(data), size)});
    });
    out.msg_flags = msg.msg_flags & ~MSG_CMSG_CLOEXEC;  // the kernel echoes our own flag
    out.addr = address::from_native(from.sa(), msg.msg_namelen);
    return out;
}

message socket::recvmsg(std::size_t bufsize, std::size_t ancbufsize, int flags) {
    std::error_code ec;
    auto out = recvmsg(bufsize, ancbufsize, flags, ec);
    if (ec) fail(ec, "recvmsg");
    return out;
}

std::size_t socket::send_fds(std::span<const std::string_view> buffers, std::span<const int> fds,
                             int flags, const address& addr, std::error_code& ec) {
    const ancillary rights{SOL_SOCKET, SCM_RIGHTS,
                           std::string(reinterpret_cast<const char*>(fds.data()), fds.size_bytes())};
    return sendmsg(buffers, std::span<const ancillary>(&rights, fds.empty() ? 0 : 1), flags, addr,
                   ec);
}

std::size_t socket::send_fds(std::span<const std::string_view> buffers, std::span<const int> fds,
                             int flags, const address& addr) {
    std::error_code ec;
    const auto n = send_fds(buffers, fds, flags, addr, ec);
    if (ec && addr.empty()) fail(ec, "send_fds");
    if (ec) fail(ec, "send_fds", addr);
    return n;
}

fds_message socket::recv_fds(std::size_t bufsize, std::size_t maxfds, int flags,
                             std::error_code& ec) {
    fds_message out;
    out.data.resize(bufsize);
    // CMSG_LEN, not CMSG_SPACE, as Python: the kernel then passes exactly maxfds at most.
    const std::size_t control_size = CMSG_LEN(maxfds * sizeof(int));
    control_buffer control(control_size);
    // Room for every descriptor the buffer can hold, so taking ownership cannot fail half way.
    out.fds.reserve(control_size / sizeof(int));
    native from;
    ::msghdr msg{};
    const auto n = receive(fd_, timeout_, out.data, control, control_size, from, msg, flags, ec);
    if (ec) return {};
    for_each_item(msg, [&](int level, int type, const unsigned char* data, std::size_t size) {
        // Other items (SCM_CREDENTIALS when SO_PASSCRED is on) are skipped, as Python does.
        if (level != SOL_SOCKET || type != SCM_RIGHTS) return;
        for (std::size_t i = 0; i + sizeof(int) <= size; i += sizeof(int)) {
            int fd = -1;
            std::memcpy(&fd, data + i, sizeof fd);
            out.fds.emplace_back(fd);
        }
    });
    out.data.resize(static_cast<std::size_t>(n));
    out.msg_flags = msg.msg_flags & ~MSG_CMSG_CLOEXEC;  // the kernel echoes our own flag
    out.addr = address::from_native(from.sa(), msg.msg_namelen);
    return out;
}

fds_message socket::recv_fds(std::size_t bufsize, std::size_t maxfds, int flags) {
    std::error_code ec;
    auto out = recv_fds(bufsize, maxfds, flags, ec);
    if (ec) fail(ec, "recv_fds");
    return out;
}

// -- files ------------------------------------------------------------------------------------

namespace {

// Sends all of data with a fresh timeout for each wait, as sendfile's fallback needs.
std::error_code send_chunk(int fd, const timeout_t& timeout, const char* data, std::size_t size,
                           std::size_t& sent) noexcept {
    std::error_code ec;
    for (std::size_t done = 0; done < size;) {
        const auto n = retry(fd, timeout, POLLOUT, deadline_of(timeout), ec,
                             [&] { return ::send(fd, data + done, size - done, MSG_NOSIGNAL); });
        if (ec) return ec;
        done += static_cast<std::size_t>(n);
        sent += static_cast<std::size_t>(n);
    }
    return {};
}

// sendfile(2) has no MSG_NOSIGNAL: while one lives, SIGPIPE is blocked in this thread, and a
// SIGPIPE that EPIPE left pending is taken back, unless one was pending before (not ours).
class sigpipe_guard {
public:
    sigpipe_guard() noexcept {
        ::sigemptyset(&pipe_);
        ::sigaddset(&pipe_, SIGPIPE);
        ::sigset_t pending;
        ::sigemptyset(&pending);
        was_pending_ = ::sigpending(&pending) == 0 && ::sigismember(&pending, SIGPIPE) == 1;
        ::pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    }
    sigpipe_guard(const sigpipe_guard&) = delete;
    sigpipe_guard& operator=(const sigpipe_guard&) = delete;
    /// Call after an EPIPE: the signal it raised is discarded.
    void took_epipe() noexcept { epipe_ = true; }
    ~sigpipe_guard() {
        if (epipe_ && !was_pending_) {
            const ::timespec zero{};
            while (::sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {}
        }
        ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }

private:
    ::sigset_t pipe_{};
    ::sigset_t old_{};
    bool was_pending_ = false;
    bool epipe_ = false;
};

}  // namespace

std::size_t socket::sendfile(int file_fd, std::uint64_t offset,
                             std::optional<std::uint64_t> count, std::error_code& ec) noexcept {
    ec.clear();
    // As Python: sendfile cannot tell a non-blocking caller how far it got and stay resumable.
    if (timeout_ && timeout_->count() == 0) {
        ec = std::make_error_code(std::errc::invalid_argument);
        return 0;
    }
    struct ::stat st{};
    if (::fstat(file_fd, &st) < 0) {
        ec = last_error();
        return 0;
    }
    const bool regular = S_ISREG(st.st_mode);
    std::uint64_t left = count.value_or(UINT64_MAX);
    if (regular) {
        const auto size = static_cast<std::uint64_t>(st.st_size);
        left = std::min(left, offset < size ? size - offset : 0);
    }
    std::size_t sent = 0;
    bool use_kernel = regular && type_ == sock::kind::stream;
    std::optional<sigpipe_guard> no_sigpipe;
    if (use_kernel) no_sigpipe.emplace();
    while (use_kernel && left > 0) {
        ::off_t off = static_cast<::off_t>(offset + sent);
        // Linux moves at most about 2 GiB per call; ask for no more than that.
        const auto n = ::sendfile(fd_, file_fd, &off,
                                  static_cast<std::size_t>(std::min<std::uint64_t>(left, 1u << 30)));
        if (n > 0) {
            sent += static_cast<std::size_t>(n);
            left -= static_cast<std::uint64_t>(n);
            continue;
        }
        if (n == 0) break;  // the file ended early (it shrank)
        const int e = errno;
        if (e == EINTR) continue;
        if (e == EPIPE) no_sigpipe->took_epipe();
        if (would_block(e) && timeout_) {
            // Each wait gets the whole timeout: the call as a whole may take longer.
            if ((ec = detail::wait_ready(fd_, POLLOUT, deadline_of(timeout_)))) break;
            continue;
        }
        // Python gives up on sendfile(2) for these when nothing went out yet.
        if (sent == 0 && (e == EINVAL || e == ENOSYS || e == EOVERFLOW)) {
            use_kernel = false;
            break;
        }
        ec = {e, std::system_category()};
        break;
    }
    no_sigpipe.reset();
    if (!ec && !use_kernel) {
        // Read and send: for pipes, datagram sockets, and files sendfile(2) refuses.
        char buf[65536];
        const bool seekable = ::lseek(file_fd, 0, SEEK_CUR) >= 0;
        if (!seekable && offset != 0) ec = std::make_error_code(std::errc::invalid_seek);
        while (!ec && left > 0) {
            const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(left, sizeof buf));
            const auto n = seekable ? ::pread(file_fd, buf, want, static_cast<::off_t>(offset + sent))
                                    : ::read(file_fd, buf, want);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) ec = last_error();
            if (n <= 0) break;
            ec = send_chunk(fd_, timeout_, buf, static_cast<std::size_t>(n), sent);
            left -= static_cast<std::uint64_t>(n);
        }
    }
    // As Python's file.seek(offset + sent): the caller's file is left where the sending ended.
    if (sent > 0) ::lseek(file_fd, static_cast<::off_t>(offset + sent), SEEK_SET);
    return sent;
}

std::size_t socket::sendfile(int file_fd, std::uint64_t offset,
                             std::optional<std::uint64_t> count) {
    if (timeout_ && timeout_->count() == 0)
        throw std::invalid_argument("sendfile: non-blocking sockets are not supported");
    std::error_code ec;
    const auto n = sendfile(file_fd, offset, count, ec);
    if (ec) fail(ec, "sendfile");
    return n;
}

std::size_t socket::sendfile(const std::string& path, std::uint64_t offset,
                             std::optional<std::uint64_t> count, std::error_code& ec) noexcept {
    const int file_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (file_fd < 0) {
        ec = last_error();
        return 0;
    }
    const auto n = sendfile(file_fd, offset, count, ec);
    ::close(file_fd);
    return n;
}

std::size_t socket::sendfile(const std::string& path, std::uint64_t offset,
                             std::optional<std::uint64_t> count) {
    if (timeout_ && timeout_->count() == 0)
        throw std::invalid_argument("sendfile: non-blocking sockets are not supported");
    const int file_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (file_fd < 0) throw_error(last_error(), "sendfile " + path);
    std::error_code ec;
    const auto n = sendfile(file_fd, offset, count, ec);
    ::close(file_fd);
    if (ec) fail(ec, "sendfile");
    return n;
}

// -- names ------------------------------------------------------------------------------------

address socket::getsockname(std::error_code& ec) const {
    native n;
    n.len = sizeof n.ss;
    if (::getsockname(fd_, reinterpret_cast<::sockaddr*>(&n.ss), &n.len) < 0) {
        ec = last_error();
        return {};
    }
    ec.clear();
    return address::from_native(n.sa(), n.len);
}

address socket::getsockname() const {
    std::error_code ec;
    auto a = getsockname(ec);
    if (ec) throw_error(ec, "getsockname fd " + std::to_string(fd_));
    return a;
}

address socket::getpeername(std::error_code& ec) const {
    native n;
    n.len = sizeof n.ss;
    if (::getpeername(fd_, reinterpret_cast<::sockaddr*>(&n.ss), &n.len) < 0) {
        ec = last_error();
        return {};
    }
    ec.clear();
    return address::from_native(n.sa(), n.len);
}

address socket::getpeername() const {
    std::error_code ec;
    auto a = getpeername(ec);
    if (ec) throw_error(ec, "getpeername fd " + std::to_string(fd_));
    return a;
}

// -- timeouts ---------------------------------------------------------------------------------

void socket::settimeout(timeout_t t) {
    if (t && t->count() < 0) throw std::invalid_argument("settimeout: timeout must be >= 0");
    if (auto ec = set_nonblocking(fd_, t.has_value())) fail(ec, "settimeout");
    timeout_ = t;
}

void socket::settimeout(double seconds) {
    if (!(seconds >= 0) || !std::isfinite(seconds))
        throw std::invalid_argument("settimeout: timeout must be a finite number >= 0");
    settimeout(timeout_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double>(seconds))));
}

void socket::setblocking(bool flag) {
    settimeout(flag ? timeout_t{} : timeout_t(std::chrono::nanoseconds(0)));
}

// -- options ----------------------------------------------------------------------------------

void socket::setsockopt(int level, int name, const void* value, ::socklen_t len,
                        std::error_code& ec) noexcept {
    ec = ::setsockopt(fd_, level, name, value, len) < 0 ? last_error() : std::error_code{};
}

void socket::setsockopt(int level, int name, const void* value, ::socklen_t len) {
    std::error_code ec;
    setsockopt(level, name, value, len, ec);
    if (ec) fail(ec, "setsockopt");
}

void socket::setsockopt(int level, int name, int value) {
    setsockopt(level, name, &value, sizeof value);
}

void socket::getsockopt(int level, int name, void* value, ::socklen_t& len,
                        std::error_code& ec) const noexcept {
    ec = ::getsockopt(fd_, level, name, value, &len) < 0 ? last_error() : std::error_code{};
}

void socket::getsockopt(int level, int name, void* value, ::socklen_t& len) const {
    std::error_code ec;
    getsockopt(level, name, value, len, ec);
    if (ec) fail(ec, "getsockopt");
}

int socket::getsockopt(int level, int name) const {
    int value = 0;
    ::socklen_t len = sizeof value;
    getsockopt(level, name, &value, len);
    return value;
}

}  // namespace sock
