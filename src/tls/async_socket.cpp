// sock::ssl::async_socket: the coroutine driver. The connection's steps run on the loop's
// thread; when one wants readiness, the task waits for the async_socket's next edge
// (wait_readable, wait_writable), given only the time left of the call.

#include <sock/async_ssl.hpp>
#include <sock/async_stream.hpp>

#include "connection.hpp"

#include <sys/socket.h>

#include <chrono>

namespace sock SOCK_API {
namespace ssl {

using detail::step;

namespace {
using clock = std::chrono::steady_clock;
}  // namespace

async_socket::async_socket() noexcept = default;

async_socket::async_socket(sock::async_socket s, std::unique_ptr<detail::connection> c) noexcept
    : sock_(std::move(s)), conn_(std::move(c)) {}

async_socket::async_socket(async_socket&& other) noexcept = default;

async_socket& async_socket::operator=(async_socket&& other) noexcept {
    if (this != &other) {
        drop();
        sock_ = std::move(other.sock_);
        conn_ = std::move(other.conn_);
    }
    return *this;
}

async_socket::~async_socket() { drop(); }

void async_socket::drop() noexcept {
    // The connection goes first: closing the socket resumes waiting calls, which must find
    // no connection left to step.
    if (conn_) conn_->notify_close();
    conn_.reset();
    sock_.close();
}

void async_socket::close() noexcept { drop(); }

std::string async_socket::detail_text() const { return conn_ ? conn_->detail() : std::string(); }

template <class Step>
task<> async_socket::drive(Step one, timeout_t bound, std::error_code& ec) {
    std::optional<clock::time_point> deadline;
    if (bound && bound->count() > 0) deadline = clock::now() + *bound;
    for (;;) {
        ec.clear();
        conn_->set_read_hint(sock_.short_read_drains(), !sock_.may_be_readable());
        const step s = one(ec);
        if (conn_->queue_known_empty()) sock_.mark_drained();
        if (s == step::done) co_return;
        timeout_t left = bound;
        if (deadline) {
            const auto rest = *deadline - clock::now();
            if (rest.count() <= 0) {
                ec = timeout_error();
                co_return;
            }
            left = std::chrono::duration_cast<std::chrono::nanoseconds>(rest);
        }
        using wait = sock::async_socket::awaiter<bool>;
        if (s == step::want_read)
            co_await sock::detail::shortened_wait<sock::async_socket, wait>(sock_, sock_.wait_readable(ec), left);
        else
            co_await sock::detail::shortened_wait<sock::async_socket, wait>(sock_, sock_.wait_writable(ec), left);
        if (ec) co_return;
    }
}

task<> async_socket::do_handshake() {
    std::error_code ec;
    co_await do_handshake(ec);
    if (ec) detail::throw_tls(ec, "handshake " + describe(), detail_text());
}

task<> async_socket::do_handshake(std::error_code& ec) {
    ec.clear();
    if (!conn_) {
        ec = errc::not_connected;
        co_return;
    }
    co_await drive([this](std::error_code& e) { return conn_->handshake(e); },
                   conn_->handshake_bound(gettimeout()), ec);
}

task<std::string> async_socket::recv(std::size_t max) {
    std::error_code ec;
    std::string s = co_await recv(max, ec);
    if (ec) detail::throw_tls(ec, "recv " + describe(), detail_text());
    co_return s;
}

task<std::string> async_socket::recv(std::size_t max, std::error_code& ec) {
    std::string s(max, '\0');
    s.resize(co_await recv_into(std::span<char>(s.data(), s.size()), ec));
    co_return s;
}

task<std::size_t> async_socket::recv_into(std::span<char> buf) {
    std::error_code ec;
    const std::size_t n = co_await recv_into(buf, ec);
    if (ec) detail::throw_tls(ec, "recv " + describe(), detail_text());
    co_return n;
}

task<std::size_t> async_socket::recv_into(std::span<char> buf, std::error_code& ec) {
    ec.clear();
    if (!conn_) {
        ec = errc::not_connected;
        co_return 0;
    }
    std::size_t n = 0;
    co_await drive(
        [this, buf, &n](std::error_code& e) {
            return conn_->read(buf, n, e);
        },
        gettimeout(), ec);
    co_return ec ? 0 : n;
}

task<std::size_t> async_socket::send(std::string_view data) {
    std::error_code ec;
    const std::size_t n = co_await send(data, ec);
    if (ec) detail::throw_tls(ec, "send " + describe(), detail_text());
    co_return n;
}

task<std::size_t> async_socket::send(std::string_view data, std::error_code& ec) {
    ec.clear();
    if (!conn_) {
        ec = errc::not_connected;
        co_return 0;
    }
    std::size_t n = 0;
    co_await drive(
        [this, data, &n](std::error_code& e) {
            return conn_->write(data, n, e);
        },
        gettimeout(), ec);
    if (ec && conn_) conn_->abandon_write();
    co_return ec ? 0 : n;
}

task<std::size_t> async_socket::sendall(std::string_view data) {
    std::error_code ec;
    const std::size_t n = co_await sendall(data, ec);
    if (ec) detail::throw_tls(ec, "sendall " + describe(), detail_text());
    co_return n;
}

task<std::size_t> async_socket::sendall(std::string_view data, std::error_code& ec) {
    return sendall(data, 0, ec);
}

task<std::size_t> async_socket::sendall(std::string_view data, int flags, std::error_code& ec) {
    ec.clear();
    if ((flags & ~MSG_MORE) != 0) {
        ec = std::make_error_code(std::errc::invalid_argument);
        co_return 0;
    }
    if (!conn_) {
        ec = errc::not_connected;
        co_return 0;
    }
    std::size_t sent = 0;
    co_await drive(
        [this, data, &sent, more = (flags & MSG_MORE) != 0](std::error_code& e) {
            return conn_->write_all(data, sent, e, more);
        },
        gettimeout(), ec);
    if (ec && conn_) conn_->abandon_write();
    co_return sent;
}

std::size_t async_socket::pending() const noexcept { return conn_ ? conn_->pending() : 0; }

task<> async_socket::drive_shutdown(std::error_code& ec, bool closing) {
    ec.clear();
    if (!conn_) {
        ec = errc::not_connected;
        co_return;
    }
    co_await drive([this, closing](std::error_code& e) { return conn_->shutdown(e, closing); },
                   conn_->shutdown_bound(gettimeout()), ec);
}

task<> async_socket::shutdown() {
    std::error_code ec;
    co_await drive_shutdown(ec);
    if (ec) detail::throw_tls(ec, "shutdown " + describe(), detail_text());
}

task<> async_socket::shutdown(std::error_code& ec) { co_await drive_shutdown(ec); }

task<sock::async_socket> async_socket::unwrap() {
    std::error_code ec;
    const std::string where = "unwrap " + describe();
    co_await drive_shutdown(ec);
    if (!ec) conn_->check_unwrap(ec);
    if (ec) {
        const std::string words = detail_text();
        drop();
        detail::throw_tls(ec, where, words);
    }
    conn_.reset();
    co_return std::move(sock_);
}

task<sock::async_socket> async_socket::unwrap(std::error_code& ec) {
    co_await drive_shutdown(ec);
    if (!ec) conn_->check_unwrap(ec);
    if (ec) {
        drop();
        co_return sock::async_socket();
    }
    conn_.reset();
    co_return std::move(sock_);
}

task<> async_socket::aclose() {
    if (conn_ && conn_->handshake_done()) {
        std::error_code ignored;
        co_await drive_shutdown(ignored, true);
    }
    drop();
}

std::string async_socket::version() const { return conn_ ? conn_->version() : std::string(); }
cipher_info async_socket::cipher() const { return conn_ ? conn_->cipher() : cipher_info{}; }
std::string async_socket::selected_alpn_protocol() const {
    return conn_ ? conn_->selected_alpn_protocol() : std::string();
}
std::optional<certificate> async_socket::getpeercert() const {
    return conn_ ? conn_->getpeercert() : std::nullopt;
}
ssl::session async_socket::session() const { return conn_ ? conn_->session() : ssl::session(); }
bool async_socket::session_reused() const noexcept { return conn_ && conn_->session_reused(); }
bool async_socket::ktls_send() const noexcept { return conn_ && conn_->ktls_send(); }
bool async_socket::ktls_recv() const noexcept { return conn_ && conn_->ktls_recv(); }
const std::string& async_socket::server_hostname() const noexcept {
    static const std::string none;
    return conn_ ? conn_->server_hostname() : none;
}
bool async_socket::server_side() const noexcept { return conn_ && conn_->server_side(); }

// Options by reference: g++ 12 copies a by-value class parameter of a coroutine bit for bit
// when the argument is a temporary made in the caller's co_await expression, and then frees
// the caller's string twice (seen under ASan). Read before the first suspension, copied where kept.
task<async_socket> async_wrap_socket(const context& ctx, sock::async_socket s, const wrap_options& options) {
    if (!s) throw std::invalid_argument("async_wrap_socket: the socket is closed");
    auto conn = std::make_unique<detail::connection>(ctx, s.fileno(), options);
    async_socket tls(std::move(s), std::move(conn));
    if (options.do_handshake_on_connect) {  // read before the handshake's first suspension
        std::error_code ec;
        co_await tls.do_handshake(ec);
        if (ec) {
            const std::string where = "handshake " + tls.describe();
            const std::string words = tls.detail_text();
            tls.drop();
            detail::throw_tls(ec, where, words);
        }
    }
    co_return tls;
}

}  // namespace ssl
}  // namespace sock
