#pragma once

// One TLS connection's OpenSSL state, driven one non-blocking step at a time: the blocking
// socket waits with poll between steps, the coroutine socket with its loop. Everything
// OpenSSL stays behind this file and the .cpp files of src/tls.

#include <sock/ssl.hpp>

#include <openssl/ssl.h>

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace sock::ssl::detail {

/// What a context holds besides OpenSSL's SSL_CTX.
struct context_impl {
    SSL_CTX* ctx = nullptr;
    ssl::protocol side = ssl::protocol::tls_client;
    bool check_hostname = false;
    std::string alpn_wire;                   // client: what is offered, in wire format
    timeout_t handshake_timeout = std::chrono::seconds(60);
    timeout_t shutdown_timeout = std::chrono::seconds(5);

    explicit context_impl(ssl::protocol p);
    context_impl(const context_impl&) = delete;
    context_impl& operator=(const context_impl&) = delete;
    ~context_impl();
};

/// A resumable session, freed with the last handle.
struct session_impl {
    SSL_SESSION* s = nullptr;
    explicit session_impl(SSL_SESSION* owned) noexcept : s(owned) {}
    session_impl(const session_impl&) = delete;
    session_impl& operator=(const session_impl&) = delete;
    ~session_impl() { SSL_SESSION_free(s); }
};

/// What one step of a call came to.
enum class step {
    done,        // finished (ec may hold a failure)
    want_read,   // wait until the socket is readable, then repeat the step with the same arguments
    want_write,  // wait until it is writable, then repeat
};

/// The state our BIO keeps per connection (bio.cpp).
struct bio_state;

/// One TLS connection over a descriptor it does not own.
class connection {
public:
    /// Sets up the SSL object over fd for ctx and options; throws sock::ssl::error if the
    /// options do not fit the context (names the call "wrap_socket").
    connection(const context& ctx, int fd, const wrap_options& options);
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    ~connection();

    /// One try at the handshake.
    step handshake(std::error_code& ec);
    /// One try at the handshake if it is not done yet (do_handshake_on_connect false leaves
    /// it to the first read or write, which call this first); done at once when it is.
    step finish_handshake(std::error_code& ec);
    /// One try at reading into buf, after the handshake: done with n > 0, or n == 0 at
    /// close_notify (ec clear).
    step read(std::span<char> buf, std::size_t& n, std::error_code& ec);
    /// One try at writing data (not empty), after the handshake: done with n > 0 bytes taken.
    /// With more, the record is held for the next write, the closing exchange or the next
    /// wait to read, and goes out with the first of them (MSG_MORE).
    step write(std::string_view data, std::size_t& n, std::error_code& ec, bool more = false);
    /// One try at writing data from `sent` on (sendall): done once all is taken, `sent`
    /// counting what was. An empty data still finishes a pending handshake.
    step write_all(std::string_view data, std::size_t& sent, std::error_code& ec, bool more);
    /// One try at the closing exchange: sends close_notify, then reads (and drops) until the
    /// peer's arrives; done when it has, or the peer has gone. Unless closing (the socket
    /// goes too), it reads one record at a time: what follows the peer's close_notify is the
    /// plain socket's after unwrap.
    step shutdown(std::error_code& ec, bool closing = false);
    /// A send call gave up (timeout, cancel) with a record half written: OpenSSL can only
    /// finish it with the same bytes, so no later send may go on.
    void abandon_write() noexcept {
        if (write_pending_) write_broken_ = true;
    }
    /// Before a step: what the driver knows of the socket's receive queue (set_read_hint).
    void set_read_hint(bool trust_short, bool known_empty) noexcept;
    /// After a step: the step's reads proved the queue empty (or it was known to be).
    bool queue_known_empty() const noexcept;
    /// After shutdown, for unwrap: fails (protocol_error) when bytes that follow the peer's
    /// close_notify were read ahead, which the plain socket would never see.
    void check_unwrap(std::error_code& ec);
    /// Sends close_notify if it can without waiting; for destructors and close without a peer.
    void notify_close() noexcept;

    /// The words of the last failure: "certificate verify failed: ...".
    const std::string& detail() const noexcept { return detail_; }
    bool handshake_done() const noexcept;
    /// Whether our close_notify has gone out.
    bool close_sent() const noexcept;
    bool server_side() const noexcept { return server_side_; }
    const std::string& server_hostname() const noexcept { return hostname_; }
    /// The bound of the closing exchange, given the socket's timeout.
    timeout_t shutdown_bound(timeout_t socket_timeout) const noexcept;
    /// The bound of the handshake, given the socket's timeout.
    timeout_t handshake_bound(timeout_t socket_timeout) const noexcept;

    std::size_t pending() const noexcept;
    std::string version() const;
    cipher_info cipher() const;
    std::string selected_alpn_protocol() const;
    std::optional<certificate> getpeercert() const;
    ssl::session session() const;
    bool session_reused() const noexcept;
    bool ktls_send() const noexcept;
    bool ktls_recv() const noexcept;

    /// Takes a new session ticket (the context's new-session callback).
    void keep_session(SSL_SESSION* s) noexcept;

private:
    /// Turns a failed SSL call's result into ec and detail_, and clears OpenSSL's queue.
    step settle(int ret, std::error_code& ec);
    /// want_read, once what is held has gone out (want_write while it cannot).
    step flush_before_waiting(std::error_code& ec);

    SSL* ssl_ = nullptr;
    bio_state* bio_ = nullptr;  // owned by the BIO, which SSL_free frees
    std::shared_ptr<context_impl> ctx_;
    std::shared_ptr<session_impl> latest_;
    std::string hostname_;
    std::string detail_;
    bool server_side_ = false;
    bool failed_ = false;
    bool write_pending_ = false;  // the last write wants to be retried
    bool write_broken_ = false;   // see abandon_write  // a fatal error: no close_notify may follow (OpenSSL's rule)
};

/// Which connection an SSL object belongs to (its ex_data slot).
int connection_index() noexcept;

// -- bio.cpp ---------------------------------------------------------------------------------

/// A BIO over fd (not owned) that reads with recv and writes with send(MSG_NOSIGNAL); kTLS
/// controls go to an inner socket BIO, so the kernel's TLS engages where it exists. Returns
/// nullptr on allocation failure; *state points at its state.
BIO* new_fd_bio(int fd, bio_state*& state) noexcept;
/// The errno of the BIO's last failed system call (0 if none), cleared by clear_errno.
int last_errno(const bio_state& s) noexcept;
void clear_errno(bio_state& s) noexcept;
/// Whether kTLS may engage (an inner socket BIO): then nothing may be read ahead or held.
bool kernel_may_frame(const bio_state& s) noexcept;
/// What the driver knows of the receive queue before a step: whether a short read proves it
/// empty, and whether it is known empty (reads then retry without a system call).
void set_read_hint(bio_state& s, bool trust_short, bool known_empty) noexcept;
/// Whether the queue is known empty after a step (a trusted short read, or the hint).
bool known_empty(const bio_state& s) noexcept;
/// While on, writes are kept instead of sent; the next write sends them first, in one call.
void hold_writes(bio_state& s, bool on) noexcept;
bool has_held(const bio_state& s) noexcept;
/// Sends what is held: 1 all sent, 0 the socket is full, -1 failed (last_errno says why).
int flush_held(bio_state& s) noexcept;

// -- errors.cpp ------------------------------------------------------------------------------

/// The reason of the oldest error queued by OpenSSL on this thread, in words; clears the queue.
std::string take_reason();
/// The exception for a failed call: sock::timeout, sock::error (system errors) or
/// sock::ssl::error with the detail.
[[noreturn]] void throw_tls(std::error_code ec, const std::string& context, const std::string& detail);

}  // namespace sock::ssl::detail
