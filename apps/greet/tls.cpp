#include "greet/tls.hpp"

#include <sock/error.hpp>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <chrono>
#include <cstdio>

namespace greet::tls {

namespace {

/// What a memory BIO holds, as a string; frees it.
std::string drain(BIO* mem) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(mem, &data);
    std::string s(data, n > 0 ? static_cast<std::size_t>(n) : 0);
    BIO_free(mem);
    return s;
}

}  // namespace

sock::ssl::context make_server_context(const server_files& files) {
    sock::ssl::context ctx(sock::ssl::protocol::tls_server);
    ctx.load_cert_chain(files.cert, files.key);
    // A close sends close_notify and takes the client's only if it is already there, as the
    // plaintext close takes what is waiting: no wake-up per connection for it (measured in
    // W6r: about 5% of a resumed handshake's CPU).
    ctx.set_shutdown_timeout(std::chrono::nanoseconds::zero());
    if (!files.client_ca.empty()) {
        ctx.load_verify_locations(files.client_ca);
        ctx.set_verify_mode(sock::ssl::cert_required::required);
    }
    return ctx;
}

std::string describe_certificate(const std::string& file) {
    std::FILE* f = std::fopen(file.c_str(), "rb");
    if (f == nullptr) return file;
    X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    ERR_clear_error();
    if (x == nullptr) return file;
    std::string subject, serial, not_after;
    if (BIO* mem = BIO_new(BIO_s_mem())) {
        X509_NAME_print_ex(mem, X509_get_subject_name(x), 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
        subject = drain(mem);
    }
    if (BIO* mem = BIO_new(BIO_s_mem())) {
        ASN1_TIME_print(mem, X509_get0_notAfter(x));
        not_after = drain(mem);
    }
    if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr)) {
        if (char* hex = BN_bn2hex(bn)) {
            serial = hex;
            OPENSSL_free(hex);
        }
        BN_free(bn);
    }
    X509_free(x);
    ERR_clear_error();
    return subject + " (serial " + serial + ", not after " + not_after + ")";
}

server_context::server_context(server_files files)
    : files_(std::move(files)), latest_(make_server_context(files_)) {}

void server_context::set_loops(std::size_t loops) { loops_ = std::make_unique<cached[]>(loops); }

const sock::ssl::context& server_context::current(std::size_t loop) {
    cached& mine = loops_[loop];
    const auto now = generation_.load(std::memory_order_acquire);
    if (mine.generation != now) {  // a reload happened: catch up, once
        std::lock_guard lock(mutex_);
        mine.ctx = latest_;
        mine.generation = generation_.load(std::memory_order_relaxed);
    }
    return *mine.ctx;
}

std::string server_context::reload() {
    try {
        auto fresh = make_server_context(files_);
        {
            std::lock_guard lock(mutex_);
            latest_ = std::move(fresh);
            generation_.fetch_add(1, std::memory_order_release);
        }
        return "reloaded certificate " + describe_certificate(files_.cert);
    } catch (const std::exception& e) {
        return std::string("reload failed: ") + e.what() + "; keeping the current certificate";
    }
}

failure classify(std::error_code ec, std::string_view words) noexcept {
    using sock::ssl::errc;
    if (ec == std::errc::timed_out) return failure::timeout;
    if (ec == errc::unexpected_eof || ec == std::errc::connection_reset || ec == std::errc::broken_pipe ||
        ec == std::errc::connection_aborted)
        return failure::eof;
    if (ec == errc::certificate_verify_failed) return failure::certificate;
    if (ec == errc::peer_alert) return failure::alert;
    if (ec == errc::protocol_error)
        return words.find("certificate") != std::string_view::npos ? failure::certificate : failure::protocol;
    return failure::other;
}

std::string_view reason_words(std::string_view what) noexcept {
    // "handshake 127.0.0.1:4433: certificate verify failed: ...": the address has colons
    // but no ": ".
    const auto at = what.find(": ");
    return at == std::string_view::npos ? what : what.substr(at + 2);
}

}  // namespace greet::tls
