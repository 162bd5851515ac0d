// sock::ssl::socket: the blocking driver. The descriptor is always non-blocking; each call
// runs the connection's steps and waits with poll in between, for the time left of the call,
// so the timeout bounds a call however many records it takes (and the handshake as a whole).

#include "connection.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <stdexcept>

namespace sock::ssl::detail {

namespace {

using clock = std::chrono::steady_clock;
using deadline_t = std::optional<clock::time_point>;

deadline_t deadline_of(timeout_t t) {
    if (!t) return std::nullopt;
    return clock::now() + *t;
}

// Waits for the readiness a step asked for; timeout_error() once the deadline passes.
std::error_code wait_for(int fd, step s, deadline_t deadline) noexcept {
    for (;;) {
        ::pollfd p{fd, static_cast<short>(s == step::want_read ? POLLIN : POLLOUT), 0};
        ::timespec ts{};
        const ::timespec* tsp = nullptr;
        if (deadline) {
            const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(*deadline - clock::now());
            if (left.count() <= 0) return timeout_error();
            ts.tv_sec = static_cast<time_t>(left.count() / 1'000'000'000);
            ts.tv_nsec = static_cast<long>(left.count() % 1'000'000'000);
            tsp = &ts;
        }
        const int rc = ::ppoll(&p, 1, tsp, nullptr);
        if (rc > 0) return {};
        if (rc == 0) return timeout_error();
        if (errno != EINTR) return {errno, std::system_category()};
    }
}

// Runs one call's steps to the end: its error, or none. poll is level-triggered, so a short
// read may be trusted within a step (the next read of the step waits in poll instead of
// finding EAGAIN) and never outlives it.
template <class Step>
std::error_code drive(connection& c, int fd, timeout_t t, deadline_t deadline, Step&& one) {
    for (;;) {
        std::error_code ec;
        c.set_read_hint(true, false);
        const step s = one(ec);
        if (s == step::done) return ec;
        if (t && t->count() == 0) return std::make_error_code(std::errc::resource_unavailable_try_again);
        if (auto w = wait_for(fd, s, deadline)) return w;
    }
}

}  // namespace

}  // namespace sock::ssl::detail

namespace sock SOCK_API {
namespace ssl {

using detail::step;

socket context::wrap_socket(sock::socket s, const wrap_options& options) const {
    if (!s) throw std::invalid_argument("wrap_socket: the socket is closed");
    if (s.type() != sock::kind::stream) throw std::invalid_argument("wrap_socket: TLS needs a stream socket");
    auto conn = std::make_unique<detail::connection>(*this, s.fileno(), options);
    const timeout_t t = s.gettimeout();
    s.setblocking(false);
    ssl::socket tls(std::move(s), std::move(conn), t);
    if (options.do_handshake_on_connect) {
        std::error_code ec;
        tls.do_handshake(ec);
        if (ec) {
            const std::string where = "handshake " + tls.describe();
            const std::string words = tls.conn_->detail();
            tls.drop();
            detail::throw_tls(ec, where, words);
        }
    }
    return tls;
}

socket::socket() noexcept = default;

socket::socket(sock::socket s, std::unique_ptr<detail::connection> c, timeout_t t) noexcept
    : sock_(std::move(s)), conn_(std::move(c)), timeout_(t) {}

socket::socket(socket&& other) noexcept = default;

socket& socket::operator=(socket&& other) noexcept {
    if (this != &other) {
        drop();
        sock_ = std::move(other.sock_);
        conn_ = std::move(other.conn_);
        timeout_ = other.timeout_;
    }
    return *this;
}

socket::~socket() { drop(); }

void socket::drop() noexcept {
    if (conn_) conn_->notify_close();
    conn_.reset();
    sock_.close();
}

void socket::do_handshake() {
    std::error_code ec;
    do_handshake(ec);
    if (ec) detail::throw_tls(ec, "handshake " + describe(), conn_ ? conn_->detail() : "");
}

void socket::do_handshake(std::error_code& ec) {
    ec.clear();
    if (!conn_) {
        ec = errc::not_connected;
        return;
    }
    const auto deadline = detail::deadline_of(conn_->handshake_bound(timeout_));
    ec = detail::drive(*conn_, fileno(), timeout_, deadline,
                       [&](std::error_code& e) { return conn_->handshake(e); });
}

std::string socket::recv(std::size_t max, int flags) {
    std::error_code ec;
    auto s = recv(max, flags, ec);
    if (ec) detail::throw_tls(ec, "recv " + describe(), conn_ ? conn_->detail() : "");
    return s;
}

std::string socket::recv(std::size_t max, int flags, std::error_code& ec) {
    std::string s(max, '\0');
    s.resize(recv_into(std::span<char>(s.data(), s.size()), flags, ec));
    return s;
}

std::size_t socket::recv_into(std::span<char> buf, int flags) {
    std::error_code ec;
    const auto n = recv_into(buf, flags, ec);
    if (ec) detail::throw_tls(ec, "recv " + describe(), conn_ ? conn_->detail() : "");
    return n;
}

std::size_t socket::recv_into(std::span<char> buf, int flags, std::error_code& ec) noexcept {
    ec.clear();
    if (flags != 0) {
        ec = std::make_error_code(std::errc::invalid_argument);  // Python: ValueError
        return 0;
    }
    if (!conn_) {
        ec = errc::not_connected;
        return 0;
    }
    std::size_t n = 0;
    ec = detail::drive(*conn_, fileno(), timeout_, detail::deadline_of(timeout_), [&](std::error_code& e) {
        return conn_->read(buf, n, e);
    });
    return ec ? 0 : n;
}

std::size_t socket::send(std::string_view data, int flags) {
    std::error_code ec;
    const auto n = send(data, flags, ec);
    if (ec) detail::throw_tls(ec, "send " + describe(), conn_ ? conn_->detail() : "");
    return n;
}

std::size_t socket::send(std::string_view data, int flags, std::error_code& ec) noexcept {
    ec.clear();
    if ((flags & ~MSG_MORE) != 0) {
        ec = std::make_error_code(std::errc::invalid_argument);
        return 0;
    }
    if (!conn_) {
        ec = errc::not_connected;
        return 0;
    }
    std::size_t n = 0;
    ec = detail::drive(*conn_, fileno(), timeout_, detail::deadline_of(timeout_), [&](std::error_code& e) {
        return conn_->write(data, n, e, (flags & MSG_MORE) != 0);
    });
    if (ec) conn_->abandon_write();
    return ec ? 0 : n;
}

void socket::sendall(std::string_view data, int flags) {
    std::error_code ec;
    sendall(data, flags, ec);
    if (ec) detail::throw_tls(ec, "sendall " + describe(), conn_ ? conn_->detail() : "");
}

std::size_t socket::sendall(std::string_view data, int flags, std::error_code& ec) noexcept {
    ec.clear();
    if ((flags & ~MSG_MORE) != 0) {
        ec = std::make_error_code(std::errc::invalid_argument);
        return 0;
    }
    if (!conn_) {
        ec = errc::not_connected;
        return 0;
    }
    std::size_t sent = 0;
    const auto deadline = detail::deadline_of(timeout_);
    ec = detail::drive(*conn_, fileno(), timeout_, deadline, [&](std::error_code& e) {
        return conn_->write_all(data, sent, e, (flags & MSG_MORE) != 0);
    });
    if (ec) conn_->abandon_write();
    return sent;
}

std::size_t socket::pending() const noexcept { return conn_ ? conn_->pending() : 0; }

sock::socket socket::unwrap() {
    std::error_code ec;
    std::string words;
    const std::string where = conn_ ? "unwrap " + describe() : "unwrap";
    auto plain = unwrap(ec, &words);
    if (ec) detail::throw_tls(ec, where, words);
    return plain;
}

sock::socket socket::unwrap(std::error_code& ec) { return unwrap(ec, nullptr); }

sock::socket socket::unwrap(std::error_code& ec, std::string* words) {
    ec.clear();
    if (!conn_) {
        ec = errc::not_connected;
        return sock::socket::invalid();
    }
    ec = detail::drive(*conn_, fileno(), timeout_, detail::deadline_of(conn_->shutdown_bound(timeout_)),
                       [&](std::error_code& e) { return conn_->shutdown(e); });
    if (!ec) conn_->check_unwrap(ec);
    if (ec) {
        if (words != nullptr) *words = conn_->detail();
        drop();
        return sock::socket::invalid();
    }
    conn_.reset();
    sock_.settimeout(timeout_);
    return std::move(sock_);
}

void socket::close() noexcept {
    if (conn_ && conn_->handshake_done()) {
        (void)detail::drive(*conn_, fileno(), timeout_, detail::deadline_of(conn_->shutdown_bound(timeout_)),
                            [&](std::error_code& e) { return conn_->shutdown(e, true); });
    }
    drop();
}

std::string socket::version() const { return conn_ ? conn_->version() : std::string(); }
cipher_info socket::cipher() const { return conn_ ? conn_->cipher() : cipher_info{}; }
std::string socket::selected_alpn_protocol() const {
    return conn_ ? conn_->selected_alpn_protocol() : std::string();
}
std::optional<certificate> socket::getpeercert() const {
    return conn_ ? conn_->getpeercert() : std::nullopt;
}
ssl::session socket::session() const { return conn_ ? conn_->session() : ssl::session(); }
bool socket::session_reused() const noexcept { return conn_ && conn_->session_reused(); }
bool socket::ktls_send() const noexcept { return conn_ && conn_->ktls_send(); }
bool socket::ktls_recv() const noexcept { return conn_ && conn_->ktls_recv(); }
const std::string& socket::server_hostname() const noexcept {
    static const std::string none;
    return conn_ ? conn_->server_hostname() : none;
}
bool socket::server_side() const noexcept { return conn_ && conn_->server_side(); }

void socket::settimeout(timeout_t t) {
    if (t && t->count() < 0) throw std::invalid_argument("settimeout: timeout must be >= 0");
    timeout_ = t;
}

void socket::settimeout(double seconds) {
    if (!(seconds >= 0) || seconds > 1e12)
        throw std::invalid_argument("settimeout: timeout must be a finite number >= 0");
    timeout_ = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(seconds));
}

}  // namespace ssl
}  // namespace sock
