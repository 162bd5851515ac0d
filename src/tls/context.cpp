// sock::ssl::context: Python's SSLContext over OpenSSL's SSL_CTX.

#include "connection.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <stdexcept>

namespace sock::ssl::detail {

namespace {

int tls_number(tls_version v) noexcept { return v == tls_version::tlsv1_3 ? TLS1_3_VERSION : TLS1_2_VERSION; }

// Client contexts: each new session (a TLS 1.3 ticket arrives after the handshake, maybe
// several) goes to its connection, which keeps the latest for session().
int on_new_session(SSL* ssl, SSL_SESSION* s) {
    auto* c = static_cast<connection*>(SSL_get_ex_data(ssl, connection_index()));
    if (c == nullptr) return 0;
    c->keep_session(s);
    return 1;  // the reference is ours now
}

// Servers choose ALPN by their own preference among what the client offers; no common
// protocol is no ALPN at all, not a failed handshake (as Python's servers do).
int on_alpn_select(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                   unsigned int inlen, void* arg) {
    const auto& wire = static_cast<context_impl*>(arg)->alpn_wire;
    if (wire.empty()) return SSL_TLSEXT_ERR_NOACK;
    unsigned char* chosen = nullptr;
    const int r = SSL_select_next_proto(&chosen, outlen,
                                        reinterpret_cast<const unsigned char*>(wire.data()),
                                        static_cast<unsigned>(wire.size()), in, inlen);
    if (r != OPENSSL_NPN_NEGOTIATED) return SSL_TLSEXT_ERR_NOACK;
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

// The key's password, for the one load_cert_chain call that sets it.
int give_password(char* buf, int size, int, void* userdata) {
    const auto& pw = *static_cast<const std::string*>(userdata);
    if (pw.size() > static_cast<std::size_t>(size)) return -1;
    pw.copy(buf, pw.size());
    return static_cast<int>(pw.size());
}

// Fails with the file's own system error (missing, unreadable) before OpenSSL words it worse.
void check_readable(const char* call, const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) throw_tls({errno, std::system_category()}, std::string(call) + " " + path, "");
    std::fclose(f);
}

[[noreturn]] void fail_file(const char* call, const std::string& what, std::string reason) {
    if (reason.empty()) reason = "not usable";
    throw ssl::error(errc::bad_file, std::string(call) + " " + what, reason);
}

}  // namespace

context_impl::context_impl(ssl::protocol p) : side(p) {
    ERR_clear_error();
    ctx = SSL_CTX_new(p == ssl::protocol::tls_client ? TLS_client_method() : TLS_server_method());
    if (ctx == nullptr) {
        ERR_clear_error();
        throw std::bad_alloc();
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    // No renegotiation (a DoS lever, gone from TLS 1.3), no compression (CRIME); kTLS when
    // the kernel offers it. Not SSL_OP_IGNORE_UNEXPECTED_EOF: a cut stream must say so.
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_ENABLE_KTLS |
                                 (p == ssl::protocol::tls_server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
    // Partial writes and moving buffers: a send's retry may come with the rest of the data;
    // released buffers: an idle connection holds no 34 KiB of record buffers.
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    if (p == ssl::protocol::tls_client) {
        check_hostname = true;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
        // Resumption with client certificates needs a session id context; any constant
        // will do for sessions that only this context's servers resume.
        static constexpr unsigned char sid[] = "sock.ssl";
        SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
        SSL_CTX_set_alpn_select_cb(ctx, on_alpn_select, this);
    }
}

context_impl::~context_impl() { SSL_CTX_free(ctx); }

}  // namespace sock::ssl::detail

namespace sock SOCK_API {
namespace ssl {

using detail::context_impl;

context::context(ssl::protocol p) : p_(std::make_shared<context_impl>(p)) {}

ssl::protocol context::protocol() const noexcept { return p_->side; }

void context::load_cert_chain(const std::string& certfile, const std::string& keyfile,
                              const std::string& password) {
    constexpr const char* call = "load_cert_chain";
    const std::string& key = keyfile.empty() ? certfile : keyfile;
    detail::check_readable(call, certfile);
    detail::check_readable(call, key);
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(p_->ctx, certfile.c_str()) != 1) {
        const auto e = ERR_peek_error();
        if (ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
            detail::fail_file(call, certfile, (ERR_clear_error(), "no PEM certificate in it"));
        detail::fail_file(call, certfile, detail::take_reason());
    }
    // Only for this load: the callback's userdata must not outlive `password`.
    SSL_CTX_set_default_passwd_cb(p_->ctx, password.empty() ? nullptr : detail::give_password);
    SSL_CTX_set_default_passwd_cb_userdata(p_->ctx, const_cast<std::string*>(&password));
    const int loaded = SSL_CTX_use_PrivateKey_file(p_->ctx, key.c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_set_default_passwd_cb(p_->ctx, nullptr);
    SSL_CTX_set_default_passwd_cb_userdata(p_->ctx, nullptr);
    const auto mismatch = [](unsigned long e) {
        return ERR_GET_LIB(e) == ERR_LIB_X509 &&
               (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
                ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH);
    };
    if (loaded != 1) {
        const auto e = ERR_peek_error();
        if (mismatch(e)) detail::fail_file(call, key, (ERR_clear_error(), "key does not match certificate"));
        if (ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
            detail::fail_file(call, key, (ERR_clear_error(), "no PEM private key in it"));
        if (ERR_GET_REASON(e) == PEM_R_BAD_PASSWORD_READ || ERR_GET_REASON(e) == PEM_R_BAD_DECRYPT ||
            ERR_GET_REASON(e) == EVP_R_BAD_DECRYPT)
            detail::fail_file(call, key, (ERR_clear_error(), "wrong password, or none given"));
        detail::fail_file(call, key, detail::take_reason());
    }
    // A key of another type than the certificate's goes to another slot without complaint;
    // this check catches it.
    if (SSL_CTX_check_private_key(p_->ctx) != 1) {
        ERR_clear_error();
        detail::fail_file(call, key, "key does not match certificate");
    }
}

void context::load_verify_locations(const std::string& cafile, const std::string& capath,
                                    const std::string& cadata) {
    constexpr const char* call = "load_verify_locations";
    if (cafile.empty() && capath.empty() && cadata.empty())
        throw std::invalid_argument("load_verify_locations: cafile, capath or cadata must be given");
    ERR_clear_error();
    if (!cafile.empty()) {
        detail::check_readable(call, cafile);
        if (SSL_CTX_load_verify_file(p_->ctx, cafile.c_str()) != 1) {
            const auto e = ERR_peek_error();
            if (ERR_GET_REASON(e) == PEM_R_NO_START_LINE || ERR_GET_REASON(e) == X509_R_NO_CERTIFICATE_FOUND)
                detail::fail_file(call, cafile, (ERR_clear_error(), "no PEM certificate in it"));
            detail::fail_file(call, cafile, detail::take_reason());
        }
    }
    if (!capath.empty() && SSL_CTX_load_verify_dir(p_->ctx, capath.c_str()) != 1)
        detail::fail_file(call, capath, detail::take_reason());
    if (!cadata.empty()) {
        BIO* mem = BIO_new_mem_buf(cadata.data(), static_cast<int>(cadata.size()));
        if (mem == nullptr) throw std::bad_alloc();
        X509_STORE* store = SSL_CTX_get_cert_store(p_->ctx);
        int added = 0;
        while (X509* cert = PEM_read_bio_X509(mem, nullptr, nullptr, nullptr)) {
            if (X509_STORE_add_cert(store, cert) == 1) ++added;
            X509_free(cert);
        }
        BIO_free(mem);
        // The loop ends at the end of the text with "no start line": not an error.
        ERR_clear_error();
        if (added == 0) detail::fail_file(call, "cadata", "no PEM certificate in it");
    }
}

void context::load_default_certs() { set_default_verify_paths(); }

void context::set_default_verify_paths() {
    ERR_clear_error();
    if (SSL_CTX_set_default_verify_paths(p_->ctx) != 1)
        detail::fail_file("set_default_verify_paths", "(system CA store)", detail::take_reason());
}

void context::set_alpn_protocols(const std::vector<std::string>& protocols) {
    std::string wire;
    for (const auto& name : protocols) {
        if (name.empty() || name.size() > 255)
            throw std::invalid_argument("set_alpn_protocols: each name must be 1 to 255 bytes");
        wire += static_cast<char>(name.size());
        wire += name;
    }
    if (p_->side == ssl::protocol::tls_client) {
        // Unusually, 0 is success here.
        if (SSL_CTX_set_alpn_protos(p_->ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                                    static_cast<unsigned>(wire.size())) != 0) {
            ERR_clear_error();
            throw std::bad_alloc();
        }
    }
    p_->alpn_wire = std::move(wire);
}

cert_required context::verify_mode() const noexcept {
    const int m = SSL_CTX_get_verify_mode(p_->ctx);
    if ((m & SSL_VERIFY_PEER) == 0) return cert_required::none;
    if (p_->side == ssl::protocol::tls_client || (m & SSL_VERIFY_FAIL_IF_NO_PEER_CERT) != 0)
        return cert_required::required;
    return cert_required::optional;
}

void context::set_verify_mode(cert_required mode) {
    if (mode == cert_required::none && p_->check_hostname)
        throw std::invalid_argument(
            "set_verify_mode: cannot set none while check_hostname is on; turn it off first");
    int m = SSL_VERIFY_NONE;
    if (mode != cert_required::none) m = SSL_VERIFY_PEER;
    if (mode == cert_required::required && p_->side == ssl::protocol::tls_server)
        m |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(p_->ctx, m, nullptr);
}

bool context::check_hostname() const noexcept { return p_->check_hostname; }

void context::set_check_hostname(bool on) {
    if (on && verify_mode() == cert_required::none) {
        p_->check_hostname = false;
        set_verify_mode(cert_required::required);
    }
    p_->check_hostname = on;
}

tls_version context::minimum_version() const noexcept {
    return SSL_CTX_get_min_proto_version(p_->ctx) == TLS1_3_VERSION ? tls_version::tlsv1_3
                                                                     : tls_version::tlsv1_2;
}

void context::set_minimum_version(tls_version v) {
    SSL_CTX_set_min_proto_version(p_->ctx, detail::tls_number(v));
}

tls_version context::maximum_version() const noexcept {
    return SSL_CTX_get_max_proto_version(p_->ctx) == TLS1_2_VERSION ? tls_version::tlsv1_2
                                                                     : tls_version::tlsv1_3;
}

void context::set_maximum_version(tls_version v) {
    SSL_CTX_set_max_proto_version(p_->ctx, detail::tls_number(v));
}

void context::set_ciphers(const std::string& ciphers) {
    ERR_clear_error();
    if (SSL_CTX_set_cipher_list(p_->ctx, ciphers.c_str()) != 1) {
        ERR_clear_error();
        throw std::invalid_argument("set_ciphers: no cipher can be selected from \"" + ciphers + "\"");
    }
}

void context::set_handshake_timeout(timeout_t t) {
    if (t && t->count() < 0) throw std::invalid_argument("set_handshake_timeout: must be >= 0");
    p_->handshake_timeout = t;
}
timeout_t context::handshake_timeout() const noexcept { return p_->handshake_timeout; }

void context::set_shutdown_timeout(timeout_t t) {
    if (t && t->count() < 0) throw std::invalid_argument("set_shutdown_timeout: must be >= 0");
    p_->shutdown_timeout = t;
}
timeout_t context::shutdown_timeout() const noexcept { return p_->shutdown_timeout; }

context create_default_context(purpose p, const std::string& cafile, const std::string& capath,
                               const std::string& cadata) {
    context ctx(p == purpose::server_auth ? protocol::tls_client : protocol::tls_server);
    if (!cafile.empty() || !capath.empty() || !cadata.empty())
        ctx.load_verify_locations(cafile, capath, cadata);
    else if (p == purpose::server_auth)
        ctx.load_default_certs();
    return ctx;
}

}  // namespace ssl
}  // namespace sock
