// One TLS connection's steps. Each public step clears OpenSSL's error queue first and leaves
// it empty, so no error of one call is blamed on the next.

#include "connection.hpp"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <algorithm>
#include <stdexcept>

namespace sock::ssl::detail {

int connection_index() noexcept {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

namespace {

bool is_ip_literal(const std::string& host) {
    unsigned char buf[16];
    return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string text_of(const ASN1_TIME* t) {
    BIO* mem = BIO_new(BIO_s_mem());
    if (mem == nullptr) return {};
    ASN1_TIME_print(mem, t);
    char* data = nullptr;
    const long n = BIO_get_mem_data(mem, &data);
    std::string s(data, static_cast<std::size_t>(std::max(0L, n)));
    BIO_free(mem);
    return s;
}

std::string text_of(const X509_NAME* name) {
    BIO* mem = BIO_new(BIO_s_mem());
    if (mem == nullptr) return {};
    X509_NAME_print_ex(mem, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    char* data = nullptr;
    const long n = BIO_get_mem_data(mem, &data);
    std::string s(data, static_cast<std::size_t>(std::max(0L, n)));
    BIO_free(mem);
    return s;
}

std::string ip_text(const ASN1_OCTET_STRING* ip) {
    char out[INET6_ADDRSTRLEN] = {};
    const int len = ASN1_STRING_length(ip);
    const unsigned char* bytes = ASN1_STRING_get0_data(ip);
    if (len == 4) ::inet_ntop(AF_INET, bytes, out, sizeof out);
    else if (len == 16) ::inet_ntop(AF_INET6, bytes, out, sizeof out);
    return out;
}

}  // namespace

connection::connection(const context& ctx, int fd, const wrap_options& o)
    : ctx_(ctx.p_), hostname_(o.server_hostname), server_side_(o.server_side) {
    const bool client_ctx = ctx_->side == ssl::protocol::tls_client;
    if (o.server_side == client_ctx)
        throw std::invalid_argument(o.server_side
                                        ? "wrap_socket: server_side needs a tls_server context"
                                        : "wrap_socket: a tls_server context can only be server_side");
    if (!o.server_side && ctx_->check_hostname && o.server_hostname.empty())
        throw std::invalid_argument("wrap_socket: check_hostname requires server_hostname");
    ERR_clear_error();
    ssl_ = SSL_new(ctx_->ctx);
    BIO* bio = ssl_ != nullptr ? new_fd_bio(fd, bio_) : nullptr;
    if (bio == nullptr) {
        SSL_free(ssl_);
        ERR_clear_error();
        throw std::bad_alloc();
    }
    SSL_set_bio(ssl_, bio, bio);  // one reference, taken by the SSL object
    // OpenSSL's read-ahead reads straight into its record buffer; not where kTLS may take the
    // records over at the handshake's end, which bytes read ahead would straddle.
    if (o.read_ahead && !kernel_may_frame(*bio_)) SSL_set_read_ahead(ssl_, 1);
    SSL_set_ex_data(ssl_, connection_index(), this);
    if (o.server_side) {
        SSL_set_accept_state(ssl_);
    } else {
        SSL_set_connect_state(ssl_);
        const bool ip = is_ip_literal(hostname_);
        // SNI carries names only (RFC 6066); an address is checked against the IP entries.
        if (!hostname_.empty() && !ip) SSL_set_tlsext_host_name(ssl_, hostname_.c_str());
        if (ctx_->check_hostname) {
            X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
            X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            const int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, hostname_.c_str())
                              : X509_VERIFY_PARAM_set1_host(param, hostname_.c_str(), 0);
            if (ok != 1) {
                SSL_free(ssl_);
                ERR_clear_error();
                throw std::invalid_argument("wrap_socket: server_hostname is not a valid name: " + hostname_);
            }
        }
        if (o.session != nullptr && *o.session) SSL_set_session(ssl_, o.session->p_->s);
    }
    ERR_clear_error();
}

connection::~connection() {
    // SSL_free frees the BIO, and with it bio_.
    SSL_free(ssl_);
}

step connection::handshake(std::error_code& ec) {
    ERR_clear_error();
    clear_errno(*bio_);
    if (failed_) {
        ec = errc::not_connected;
        detail_ = "the connection has already failed";
        return step::done;
    }
    // A server's flights go out after the call, in one send each as before; what a TLS 1.3
    // server writes once the handshake is done (its tickets) waits for the next write.
    hold_writes(*bio_, server_side_);
    const int r = SSL_do_handshake(ssl_);
    hold_writes(*bio_, false);
    if (r == 1) {
        if (SSL_version(ssl_) != TLS1_3_VERSION) (void)flush_held(*bio_);  // its last flight
        return step::done;
    }
    const step s = settle(r, ec);
    if (s == step::done) {
        (void)flush_held(*bio_);  // an alert, if OpenSSL wrote one
        return s;
    }
    return s == step::want_read ? flush_before_waiting(ec) : s;
}

step connection::flush_before_waiting(std::error_code& ec) {
    if (!has_held(*bio_)) return step::want_read;
    const int f = flush_held(*bio_);
    if (f > 0) return step::want_read;
    if (f == 0) return step::want_write;  // then the same step again, which flushes the rest
    failed_ = true;
    ec = {last_errno(*bio_), std::system_category()};
    detail_ = ec.message();
    return step::done;
}

step connection::read(std::span<char> buf, std::size_t& n, std::error_code& ec) {
    n = 0;
    if (const step s = finish_handshake(ec); s != step::done || ec) return s;
    ERR_clear_error();
    clear_errno(*bio_);
    if (failed_) {
        ec = errc::not_connected;
        detail_ = "the connection has already failed";
        return step::done;
    }
    if (buf.empty()) return step::done;
    if ((SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) != 0) return step::done;
    const int r = SSL_read_ex(ssl_, buf.data(), buf.size(), &n) == 1 ? 1 : 0;
    if (r == 1) return step::done;
    n = 0;
    if (SSL_get_error(ssl_, r) == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        return step::done;  // the peer's close_notify: a clean end
    }
    const step s = settle(r, ec);
    return s == step::want_read ? flush_before_waiting(ec) : s;
}

step connection::write(std::string_view data, std::size_t& n, std::error_code& ec, bool more) {
    n = 0;
    if (const step s = finish_handshake(ec); s != step::done || ec) return s;
    ERR_clear_error();
    clear_errno(*bio_);
    if (failed_ || write_broken_ || (SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) != 0) {
        ec = errc::not_connected;
        detail_ = failed_         ? "the connection has already failed"
                  : write_broken_ ? "an earlier send gave up in the middle of a record"
                                  : "close_notify already sent";
        return step::done;
    }
    if (data.empty()) return step::done;
    // With kTLS send the kernel frames what we send: held records would be framed twice.
    hold_writes(*bio_, more && !ktls_send());
    const int ok = SSL_write_ex(ssl_, data.data(), data.size(), &n);
    hold_writes(*bio_, false);
    if (ok == 1) {
        write_pending_ = false;
        return step::done;
    }
    n = 0;
    const step s = settle(0, ec);
    write_pending_ = s != step::done;
    return s;
}

step connection::write_all(std::string_view data, std::size_t& sent, std::error_code& ec, bool more) {
    if (const step s = finish_handshake(ec); s != step::done || ec) return s;
    // The same slice again after a wait, as OpenSSL requires of a retried write.
    while (sent < data.size()) {
        std::size_t n = 0;
        const step s = write(data.substr(sent), n, ec, more);
        if (s != step::done || ec) return s;
        sent += n;
    }
    return step::done;
}

step connection::shutdown(std::error_code& ec, bool closing) {
    ERR_clear_error();
    clear_errno(*bio_);
    if (failed_ || !SSL_is_init_finished(ssl_)) return step::done;  // nothing to close politely
    if (!closing) SSL_set_read_ahead(ssl_, 0);
    // What is there now is read, whatever the driver knew: bytes left unread at the close
    // would reset the connection.
    detail::set_read_hint(*bio_, false, false);
    if ((SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) == 0 || SSL_want_write(ssl_)) {
        const int r = SSL_shutdown(ssl_);
        if (r < 0) {
            const step s = settle(r, ec);
            if (s != step::done || ec) return s;
        }
    }
    // Ours is out. The peer's comes after whatever it was still sending (and, for a TLS 1.3
    // client, the server's tickets): read and drop until it arrives.
    char scratch[4096];
    while ((SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) == 0) {
        ERR_clear_error();
        std::size_t n = 0;
        if (SSL_read_ex(ssl_, scratch, sizeof scratch, &n) == 1) continue;
        const int e = SSL_get_error(ssl_, 0);
        if (e == SSL_ERROR_ZERO_RETURN) break;
        const step s = settle(0, ec);
        // Ours is out and what was there is read: a closing socket with a zero shutdown
        // timeout does not wait for the peer's.
        if (s == step::want_read && closing && !has_held(*bio_) && ctx_->shutdown_timeout &&
            ctx_->shutdown_timeout->count() == 0) {
            ERR_clear_error();
            return step::done;
        }
        if (s == step::want_read) return flush_before_waiting(ec);
        return s;
    }
    ERR_clear_error();
    return step::done;
}

void connection::set_read_hint(bool trust_short, bool known_empty) noexcept {
    detail::set_read_hint(*bio_, trust_short, known_empty);
}

bool connection::queue_known_empty() const noexcept { return known_empty(*bio_); }

void connection::check_unwrap(std::error_code& ec) {
    if (SSL_has_pending(ssl_) == 0) return;
    ec = errc::protocol_error;
    detail_ = "bytes that followed the peer's close_notify were read ahead "
              "(wrap_options::read_ahead = false leaves them in the socket)";
}

void connection::notify_close() noexcept {
    if (failed_ || !SSL_is_init_finished(ssl_) || (SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) != 0)
        return;
    ERR_clear_error();
    (void)SSL_shutdown(ssl_);  // on a non-blocking descriptor: sent now, or not at all
    ERR_clear_error();
}

step connection::settle(int ret, std::error_code& ec) {
    const int e = SSL_get_error(ssl_, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        ERR_clear_error();
        return step::want_read;
    case SSL_ERROR_WANT_WRITE:
        ERR_clear_error();
        return step::want_write;
    case SSL_ERROR_ZERO_RETURN:
        ERR_clear_error();
        ec = errc::not_connected;
        detail_ = "the peer has closed the TLS connection";
        return step::done;
    default:
        break;
    }
    failed_ = true;
    const int sys = last_errno(*bio_);
    const unsigned long first = ERR_peek_error();
    if (e == SSL_ERROR_SYSCALL && first == 0) {
        ERR_clear_error();
        if (sys != 0) {
            ec = {sys, std::system_category()};
            detail_ = ec.message();
        } else {
            // OpenSSL before 3 said it this way; 3.x says SSL_R_UNEXPECTED_EOF_WHILE_READING.
            ec = errc::unexpected_eof;
            detail_ = ec.message();
        }
        return step::done;
    }
    const int reason = ERR_GET_REASON(first);
    if (ERR_GET_LIB(first) == ERR_LIB_SSL && reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ERR_clear_error();
        ec = errc::unexpected_eof;
        detail_ = ec.message();
        return step::done;
    }
    if (ERR_GET_LIB(first) == ERR_LIB_SSL && reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        ERR_clear_error();
        const long v = SSL_get_verify_result(ssl_);
        ec = errc::certificate_verify_failed;
        detail_ = std::string("certificate verify failed: ") + X509_verify_cert_error_string(v);
        if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
            detail_ += " (expected " + hostname_ + ")";
        return step::done;
    }
    // A reset or broken pipe under a record: the system's words say more than OpenSSL's.
    if (sys != 0 && sys != EAGAIN) {
        ERR_clear_error();
        ec = {sys, std::system_category()};
        detail_ = ec.message();
        return step::done;
    }
    ec = ERR_GET_LIB(first) == ERR_LIB_SSL && reason >= SSL_AD_REASON_OFFSET ? errc::peer_alert
                                                                              : errc::protocol_error;
    detail_ = take_reason();
    if (detail_.empty()) detail_ = ec.message();
    return step::done;
}

bool connection::handshake_done() const noexcept { return SSL_is_init_finished(ssl_) != 0; }

step connection::finish_handshake(std::error_code& ec) {
    if (handshake_done()) return step::done;
    return handshake(ec);
}
bool connection::close_sent() const noexcept { return (SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) != 0; }

timeout_t connection::shutdown_bound(timeout_t socket_timeout) const noexcept {
    const timeout_t own = ctx_->shutdown_timeout;
    if (!own || own->count() == 0) return socket_timeout;  // zero: see shutdown()
    if (!socket_timeout) return own;
    return std::min(*own, *socket_timeout);
}

timeout_t connection::handshake_bound(timeout_t socket_timeout) const noexcept {
    return socket_timeout ? socket_timeout : ctx_->handshake_timeout;
}

std::size_t connection::pending() const noexcept {
    return static_cast<std::size_t>(std::max(0, SSL_pending(ssl_)));
}

std::string connection::version() const {
    if (!SSL_is_init_finished(ssl_)) return {};
    return SSL_get_version(ssl_);
}

cipher_info connection::cipher() const {
    const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
    if (c == nullptr) return {};
    return {SSL_CIPHER_get_name(c), SSL_CIPHER_get_version(c), SSL_CIPHER_get_bits(c, nullptr)};
}

std::string connection::selected_alpn_protocol() const {
    const unsigned char* p = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(ssl_, &p, &len);
    return p != nullptr ? std::string(reinterpret_cast<const char*>(p), len) : std::string();
}

std::optional<certificate> connection::getpeercert() const {
    X509* x = SSL_get0_peer_certificate(ssl_);
    if (x == nullptr) return std::nullopt;
    certificate c;
    c.subject = text_of(X509_get_subject_name(x));
    c.issuer = text_of(X509_get_issuer_name(x));
    c.not_before = text_of(X509_get0_notBefore(x));
    c.not_after = text_of(X509_get0_notAfter(x));
    if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr)) {
        if (char* hex = BN_bn2hex(bn)) {
            c.serial_number = hex;
            OPENSSL_free(hex);
        }
        BN_free(bn);
    }
    auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
        const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
        if (g->type == GEN_DNS) {
            const auto* s = g->d.dNSName;
            c.subject_alt_names.push_back(
                "DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                     static_cast<std::size_t>(ASN1_STRING_length(s))));
        } else if (g->type == GEN_IPADD) {
            c.subject_alt_names.push_back("IP Address:" + ip_text(g->d.iPAddress));
        }
    }
    GENERAL_NAMES_free(names);
    const int len = i2d_X509(x, nullptr);
    if (len > 0) {
        c.der.resize(static_cast<std::size_t>(len));
        auto* out = reinterpret_cast<unsigned char*>(c.der.data());
        i2d_X509(x, &out);
    }
    ERR_clear_error();
    return c;
}

void connection::keep_session(SSL_SESSION* s) noexcept {
    try {
        latest_ = std::make_shared<session_impl>(s);
    } catch (const std::bad_alloc&) {
        SSL_SESSION_free(s);
    }
}

ssl::session connection::session() const {
    if (latest_) return ssl::session(latest_);
    // A TLS 1.2 session is there from the handshake; a TLS 1.3 one only with a ticket.
    SSL_SESSION* s = SSL_get1_session(ssl_);
    if (s == nullptr) return {};
    if (SSL_SESSION_is_resumable(s) != 1) {
        SSL_SESSION_free(s);
        return {};
    }
    return ssl::session(std::make_shared<session_impl>(s));
}

bool connection::session_reused() const noexcept { return SSL_session_reused(ssl_) == 1; }

bool connection::ktls_send() const noexcept {
#ifndef OPENSSL_NO_KTLS
    return BIO_get_ktls_send(SSL_get_wbio(ssl_)) != 0;
#else
    return false;
#endif
}

bool connection::ktls_recv() const noexcept {
#ifndef OPENSSL_NO_KTLS
    return BIO_get_ktls_recv(SSL_get_rbio(ssl_)) != 0;
#else
    return false;
#endif
}

}  // namespace sock::ssl::detail

namespace sock SOCK_API {
namespace ssl {

std::string session::id() const {
    if (!p_) return {};
    unsigned len = 0;
    const unsigned char* id = SSL_SESSION_get_id(p_->s, &len);
    return std::string(reinterpret_cast<const char*>(id), len);
}

bool session::has_ticket() const noexcept { return p_ && SSL_SESSION_has_ticket(p_->s) == 1; }

std::chrono::seconds session::ticket_lifetime_hint() const noexcept {
    return p_ ? std::chrono::seconds(SSL_SESSION_get_ticket_lifetime_hint(p_->s)) : std::chrono::seconds(0);
}

}  // namespace ssl
}  // namespace sock
