#pragma once

// TLS over sock::socket with Python's ssl module's names: a context (SSLContext) that wraps a
// connected socket into a sock::ssl::socket (SSLSocket) with the same verbs. OpenSSL does the
// work, but none of its headers is needed here: link sock::tls (pkg-config sock-tls).
// The coroutine version is in async_ssl.hpp.

#include <sock/error.hpp>
#include <sock/export.hpp>
#include <sock/socket.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

namespace sock SOCK_API {
namespace ssl {

/// What went wrong in TLS itself, in ssl_category(); system errors and timeouts keep their
/// own codes (std::errc::timed_out, ECONNRESET...).
enum class errc {
    /// The peer's certificate did not verify: chain, dates or name (Python's SSLCertVerificationError).
    certificate_verify_failed = 1,
    /// The stream ended without close_notify: the data may be cut short (Python's SSLEOFError).
    unexpected_eof,
    /// The peer refused the handshake or ended the connection with a TLS alert.
    peer_alert,
    /// What the peer sent is not TLS, or not what was agreed (Python's SSLError).
    protocol_error,
    /// A certificate, key or CA file or string could not be used (load_cert_chain, ...).
    bad_file,
    /// The call needs a finished handshake, or the connection has already failed or closed.
    not_connected,
};

}  // namespace ssl
}  // namespace sock

template <>
struct std::is_error_code_enum<sock::ssl::errc> : std::true_type {};

namespace sock SOCK_API {
namespace ssl {

/// The category of errc ("sock.ssl"); message() says what failed in words.
const std::error_category& ssl_category() noexcept;
/// Makes errc usable as a std::error_code.
std::error_code make_error_code(errc e) noexcept;

/// A TLS failure: what() names the call, the peer and the cause in words, e.g.
/// "handshake 127.0.0.1:8443: certificate verify failed: Hostname mismatch (expected example.test)".
class error : public sock::error {
public:
    /// context: the call and its peer; detail: the cause, in words.
    error(std::error_code ec, const std::string& context, const std::string& detail);
    const char* what() const noexcept override { return message_.c_str(); }

private:
    std::string message_;
};

/// Which side the context is for (Python's PROTOCOL_TLS_CLIENT, PROTOCOL_TLS_SERVER).
enum class protocol { tls_client, tls_server };
/// What create_default_context's certificates will authenticate (Python's ssl.Purpose).
enum class purpose {
    /// Servers: a client context that verifies them (Purpose.SERVER_AUTH).
    server_auth,
    /// Clients: a server context (Purpose.CLIENT_AUTH).
    client_auth,
};
/// Whether the peer must show a certificate (Python's CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED).
enum class cert_required { none, optional, required };
/// Protocol versions (Python's TLSVersion); TLS 1.2 is the least this library speaks.
enum class tls_version { tlsv1_2, tlsv1_3 };

namespace detail {
struct context_impl;
struct session_impl;
class connection;
}  // namespace detail

/// A TLS session a client can resume (Python's SSLSession). Copies share it.
class session {
public:
    /// No session: a full handshake.
    session() noexcept = default;
    /// Whether there is a session.
    explicit operator bool() const noexcept { return static_cast<bool>(p_); }
    /// The session's id bytes (empty for TLS 1.3 tickets without one).
    std::string id() const;
    /// Whether it carries a ticket (TLS 1.3 sessions always do).
    bool has_ticket() const noexcept;
    /// The server's hint of how long the ticket may be used.
    std::chrono::seconds ticket_lifetime_hint() const noexcept;

private:
    friend class detail::connection;
    explicit session(std::shared_ptr<detail::session_impl> p) noexcept : p_(std::move(p)) {}
    std::shared_ptr<detail::session_impl> p_;
};

/// What wrap_socket takes besides the socket (Python's wrap_socket keyword arguments).
struct wrap_options {
    /// Be the server of the handshake (the context must be a tls_server one).
    bool server_side = false;
    /// The server's name: sent as SNI and, with check_hostname, checked against its
    /// certificate. An IP address is checked against the certificate's IP entries (no SNI).
    std::string server_hostname{};
    /// Handshake inside wrap_socket; false leaves it to do_handshake() (or the first call).
    bool do_handshake_on_connect = true;
    /// A client's earlier session to resume; nullptr for a full handshake.
    const ssl::session* session = nullptr;
    /// Read what the socket holds in one call and keep what OpenSSL has not asked for yet
    /// (fewer system calls per record; not where the kernel has a TLS module, whose kTLS
    /// would then be refused). Set false when the peer may send plaintext right
    /// behind its close_notify without waiting for ours, which unwrap() must then leave in
    /// the socket: with read-ahead, such bytes, if read, make unwrap fail (protocol_error)
    /// instead of being lost in silence.
    bool read_ahead = true;
};

/// What the cipher in use is (Python's cipher() tuple).
struct cipher_info {
    /// OpenSSL's name of it, e.g. "TLS_AES_256_GCM_SHA384".
    std::string name;
    /// The protocol version, e.g. "TLSv1.3".
    std::string protocol;
    /// Secret bits.
    int bits = 0;
};

/// The peer's certificate, the parts worth reading (Python's getpeercert(), plus the DER).
struct certificate {
    /// The subject, one line (RFC 2253), e.g. "CN=localhost".
    std::string subject;
    /// The issuer, in the same form.
    std::string issuer;
    /// subjectAltName entries as Python words them: "DNS:localhost", "IP Address:127.0.0.1".
    std::vector<std::string> subject_alt_names;
    /// Validity, as OpenSSL prints it: "Jan  1 00:00:00 2030 GMT".
    std::string not_before;
    std::string not_after;
    /// The serial number in hexadecimal.
    std::string serial_number;
    /// The whole certificate, DER (Python's getpeercert(binary_form=True)).
    std::string der;
};

class socket;

/// TLS settings and certificates shared by the connections wrapped with it (Python's
/// SSLContext). Copies are handles to the same settings; change them before wrapping.
///
/// Always set: TLS 1.2 at least, no renegotiation, no compression, kTLS when the kernel has
/// it. A tls_client context verifies the server (cert_required::required, check_hostname) but
/// trusts no CA until load_default_certs or load_verify_locations; create_default_context
/// does both, as Python's does.
class context {
public:
    /// A context for one side, with Python's defaults for it.
    explicit context(ssl::protocol p);

    /// Loads this side's certificate chain (PEM, leaf first) and its private key (ECDSA or
    /// RSA; in certfile when keyfile is empty). Errors name the file and the reason, e.g.
    /// "load_cert_chain server.key: key does not match certificate".
    void load_cert_chain(const std::string& certfile, const std::string& keyfile = "",
                         const std::string& password = "");
    /// Trusts the CAs in cafile (PEM), the hashed directory capath, and cadata (PEM text).
    void load_verify_locations(const std::string& cafile = "", const std::string& capath = "",
                               const std::string& cadata = "");
    /// Trusts the system's CA store (Python's load_default_certs).
    void load_default_certs();
    /// Trusts the system's CA store as OpenSSL finds it (SSL_CERT_FILE, SSL_CERT_DIR too).
    void set_default_verify_paths();

    /// The ALPN protocols offered (client) or accepted, in preference order (server).
    void set_alpn_protocols(const std::vector<std::string>& protocols);
    /// Whether and how the peer's certificate is required; none throws invalid_argument while
    /// check_hostname is on (as Python's does): turn that off first.
    cert_required verify_mode() const noexcept;
    void set_verify_mode(cert_required mode);
    /// Whether a client checks the server's name (wrap_options::server_hostname); turning it
    /// on makes verify_mode required if it was none.
    bool check_hostname() const noexcept;
    void set_check_hostname(bool on);
    /// The least protocol version accepted; TLS 1.2 by default.
    tls_version minimum_version() const noexcept;
    void set_minimum_version(tls_version v);
    /// The most protocol version offered; TLS 1.3 by default.
    tls_version maximum_version() const noexcept;
    void set_maximum_version(tls_version v);
    /// The TLS 1.2 cipher list, OpenSSL's syntax ("ECDHE+AESGCM"); invalid_argument if none.
    void set_ciphers(const std::string& ciphers);
    /// How long a handshake may take on a socket that has no timeout (60 s, as asyncio's
    /// ssl_handshake_timeout): a handshake is always bounded. nullopt waits for ever.
    void set_handshake_timeout(timeout_t t);
    timeout_t handshake_timeout() const noexcept;
    /// How long close() and unwrap() wait for the peer's close_notify (5 s, and never more
    /// than the socket's timeout). nullopt uses the socket's timeout alone. Zero: close()
    /// sends close_notify (within the socket's timeout) and takes the peer's only if it is
    /// already there, never waiting for it (RFC 8446 allows it; a server that closes after
    /// its answer saves a wake-up per connection); unwrap() still waits, within the socket's
    /// timeout.
    void set_shutdown_timeout(timeout_t t);
    timeout_t shutdown_timeout() const noexcept;
    /// Which side this context is for.
    ssl::protocol protocol() const noexcept;

    /// Wraps a connected stream socket (Python's wrap_socket); the handshake runs here unless
    /// do_handshake_on_connect is false, bounded as a whole by the socket's timeout (else the
    /// handshake timeout). On failure the socket is closed and the error says why.
    ssl::socket wrap_socket(sock::socket s, const wrap_options& options = {}) const;

private:
    friend class detail::connection;
    std::shared_ptr<detail::context_impl> p_;
};

/// Python's create_default_context: for server_auth a tls_client context that trusts the
/// system's CAs (or cafile, capath, cadata when given) and checks host names; for
/// client_auth a tls_server context.
context create_default_context(purpose p = purpose::server_auth, const std::string& cafile = "",
                               const std::string& capath = "", const std::string& cadata = "");

/// A TLS connection over a blocking sock::socket (Python's SSLSocket). Owns the socket.
///
/// The verbs and timeouts are sock::socket's: each call is bounded by the timeout (sendall
/// and the handshake as a whole); timeout zero fails with EAGAIN instead of waiting. Every
/// failing call throws (sock::ssl::error, sock::timeout, sock::error) naming the call and
/// the peer, or reports through its std::error_code& form. recv returns "" only after the
/// peer's close_notify; a stream cut without one is errc::unexpected_eof. Sends never raise
/// SIGPIPE. One thread at a time.
class socket {
public:
    /// An empty socket (fileno() == -1).
    socket() noexcept;
    socket(socket&& other) noexcept;
    socket& operator=(socket&& other) noexcept;
    /// Sends close_notify if the send buffer takes it at once, then closes: never waits.
    ~socket();

    /// Runs (or finishes) the handshake, bounded by the timeout as a whole.
    void do_handshake();
    void do_handshake(std::error_code& ec);

    /// Receives at most max bytes; "" after the peer's close_notify.
    std::string recv(std::size_t max, int flags = 0);
    std::string recv(std::size_t max, int flags, std::error_code& ec);
    /// Receives into buf; 0 after the peer's close_notify. flags must be 0.
    std::size_t recv_into(std::span<char> buf, int flags = 0);
    std::size_t recv_into(std::span<char> buf, int flags, std::error_code& ec) noexcept;
    /// Sends some of data (at least one byte); returns how many. flags: 0 or MSG_MORE (as
    /// sendall's).
    std::size_t send(std::string_view data, int flags = 0);
    std::size_t send(std::string_view data, int flags, std::error_code& ec) noexcept;
    /// Sends all of data; the timeout bounds the whole call. flags: 0, or MSG_MORE when more
    /// follows at once: the records wait, in user space, for the next send, close or wait to
    /// read, and go out with the first of them in one system call.
    void sendall(std::string_view data, int flags = 0);
    /// Non-throwing sendall: returns how many bytes went out before an error.
    std::size_t sendall(std::string_view data, int flags, std::error_code& ec) noexcept;
    /// Decrypted bytes buffered, which recv returns without waiting.
    std::size_t pending() const noexcept;

    /// Sends close_notify, waits for the peer's (bounded by the shutdown timeout), and gives
    /// the plain socket back (Python's unwrap). On failure the socket is closed.
    sock::socket unwrap();
    sock::socket unwrap(std::error_code& ec);
    /// Sends close_notify, waits for the peer's within the shutdown timeout, and closes.
    /// Never throws; a peer that does not answer costs at most the bound.
    void close() noexcept;

    /// The protocol version agreed, "TLSv1.3" or "TLSv1.2"; "" before the handshake.
    std::string version() const;
    /// The cipher in use; empty name before the handshake.
    cipher_info cipher() const;
    /// The ALPN protocol agreed; "" if none.
    std::string selected_alpn_protocol() const;
    /// The peer's certificate; nullopt if it showed none.
    std::optional<certificate> getpeercert() const;
    /// The client's latest resumable session. With TLS 1.3 the server sends its tickets after
    /// the handshake: a client has one once it has received anything (or after close()).
    ssl::session session() const;
    /// Whether the handshake resumed the session given in wrap_options.
    bool session_reused() const noexcept;
    /// Whether the kernel encrypts sends (kTLS), or decrypts receives; false when the kernel has
    /// no TLS module: OpenSSL then does it, silently.
    bool ktls_send() const noexcept;
    bool ktls_recv() const noexcept;
    /// The name given in wrap_options.
    const std::string& server_hostname() const noexcept;
    /// Whether this is the server end.
    bool server_side() const noexcept;

    /// The timeout of every later call; see sock::socket::settimeout.
    void settimeout(timeout_t t);
    void settimeout(double seconds);
    timeout_t gettimeout() const noexcept { return timeout_; }
    int fileno() const noexcept { return sock_.fileno(); }
    explicit operator bool() const noexcept { return static_cast<bool>(sock_); }
    address getpeername() const { return sock_.getpeername(); }
    address getsockname() const { return sock_.getsockname(); }
    /// The socket underneath, for options and names: reading or writing it breaks TLS. It is
    /// non-blocking; the timeout is kept here.
    sock::socket& raw() noexcept { return sock_; }
    const sock::socket& raw() const noexcept { return sock_; }
    /// Text naming this socket in error messages (its peer).
    std::string describe() const { return sock_.describe(); }

private:
    friend class context;
    socket(sock::socket s, std::unique_ptr<detail::connection> c, timeout_t t) noexcept;
    void drop() noexcept;
    sock::socket unwrap(std::error_code& ec, std::string* words);

    sock::socket sock_ = sock::socket::invalid();
    std::unique_ptr<detail::connection> conn_;
    timeout_t timeout_;
};

}  // namespace ssl
}  // namespace sock
