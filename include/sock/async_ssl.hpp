#pragma once

// TLS over the event engine's async_socket: the blocking ssl::socket's verbs, awaited.
// `auto tls = co_await sock::ssl::async_wrap_socket(ctx, std::move(conn), options);`

#include <sock/async_socket.hpp>
#include <sock/export.hpp>
#include <sock/ssl.hpp>
#include <sock/task.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace sock SOCK_API {
namespace ssl {

/// A TLS connection over a sock::async_socket (asyncio's SSL transport, with SSLSocket's
/// verbs). Owns the socket.
///
/// Calls are tasks to co_await; each has a form taking std::error_code& that never throws.
/// Timeouts are the async_socket's (gettimeout): each call is bounded by it as a whole, the
/// handshake too (else by the context's handshake timeout). Cancelling the awaiting task
/// (task_set::cancel_all, wait_for) ends a waiting call with operation_canceled. One reader
/// and one writer may wait at a time; a send that timed out or was cancelled mid-record
/// leaves no way to send more. recv returns "" only after the peer's close_notify; a stream
/// cut without one is errc::unexpected_eof. Satisfies sock::async_byte_stream, so
/// stream_reader and stream_writer work over it.
class async_socket {
public:
    /// An empty socket (fileno() == -1).
    async_socket() noexcept;
    async_socket(async_socket&& other) noexcept;
    async_socket& operator=(async_socket&& other) noexcept;
    /// Sends close_notify if the send buffer takes it at once, then closes: never waits.
    ~async_socket();

    /// Runs (or finishes) the handshake.
    task<> do_handshake();
    task<> do_handshake(std::error_code& ec);
    /// Receives at most max bytes; "" after the peer's close_notify.
    task<std::string> recv(std::size_t max);
    task<std::string> recv(std::size_t max, std::error_code& ec);
    /// Receives into buf; 0 after the peer's close_notify.
    task<std::size_t> recv_into(std::span<char> buf);
    task<std::size_t> recv_into(std::span<char> buf, std::error_code& ec);
    /// Sends some of data (at least one byte); returns how many.
    task<std::size_t> send(std::string_view data);
    task<std::size_t> send(std::string_view data, std::error_code& ec);
    /// Sends all of data; returns bytes sent (with ec: what went out before a failure).
    task<std::size_t> sendall(std::string_view data);
    task<std::size_t> sendall(std::string_view data, std::error_code& ec);
    /// flags: 0 or MSG_MORE, more follows at once: the records wait, in user space, for the
    /// next send, close or wait to read, and go out with the first of them in one system
    /// call (a reply, then close_notify: one segment).
    task<std::size_t> sendall(std::string_view data, int flags, std::error_code& ec);
    /// Decrypted bytes buffered, which recv returns without waiting.
    std::size_t pending() const noexcept;

    /// Sends close_notify and waits for the peer's, bounded by the shutdown timeout; the
    /// socket stays open (close it, or unwrap).
    task<> shutdown();
    task<> shutdown(std::error_code& ec);
    /// shutdown(), then gives the plain socket back (Python's unwrap).
    task<sock::async_socket> unwrap();
    task<sock::async_socket> unwrap(std::error_code& ec);
    /// shutdown() (its failures ignored: a peer that does not answer costs at most the bound),
    /// then close(). Never throws.
    task<> aclose();
    /// Sends close_notify if the send buffer takes it at once, and closes: never waits.
    void close() noexcept;

    /// See sock::ssl::socket for these.
    std::string version() const;
    cipher_info cipher() const;
    std::string selected_alpn_protocol() const;
    std::optional<certificate> getpeercert() const;
    ssl::session session() const;
    bool session_reused() const noexcept;
    bool ktls_send() const noexcept;
    bool ktls_recv() const noexcept;
    const std::string& server_hostname() const noexcept;
    bool server_side() const noexcept;

    /// The timeout of every later call (the async_socket's).
    void settimeout(timeout_t t) { sock_.settimeout(t); }
    void settimeout(double seconds) { sock_.settimeout(seconds); }
    timeout_t gettimeout() const noexcept { return sock_.gettimeout(); }
    int fileno() const noexcept { return sock_.fileno(); }
    explicit operator bool() const noexcept { return static_cast<bool>(sock_); }
    address getpeername() const { return sock_.getpeername(); }
    address getsockname() const { return sock_.getsockname(); }
    /// The async_socket underneath, for options and names: reading or writing it breaks TLS.
    sock::async_socket& raw() noexcept { return sock_; }
    const sock::async_socket& raw() const noexcept { return sock_; }
    /// Text naming this socket in error messages (its peer).
    std::string describe() const { return sock_.raw().describe(); }

private:
    friend task<async_socket> async_wrap_socket(const context&, sock::async_socket, const wrap_options&);
    async_socket(sock::async_socket s, std::unique_ptr<detail::connection> c) noexcept;
    template <class Step>
    task<> drive(Step one, timeout_t bound, std::error_code& ec);
    task<> drive_shutdown(std::error_code& ec, bool closing = false);
    void drop() noexcept;
    std::string detail_text() const;

    sock::async_socket sock_;
    std::unique_ptr<detail::connection> conn_;
};

/// Wraps a connected async_socket and (unless do_handshake_on_connect is false) runs the
/// handshake, bounded as ssl::socket's is. On failure the socket is closed and the error
/// says why. Python's SSLContext.wrap_socket, awaited. Await it where it is made: options
/// (and ctx) are read while it runs. Give options as a named variable: g++ 12 miscompiles an
/// aggregate temporary with a string made inside a co_await expression (it frees it twice).
task<async_socket> async_wrap_socket(const context& ctx, sock::async_socket s,
                                     const wrap_options& options = {});

}  // namespace ssl
}  // namespace sock
