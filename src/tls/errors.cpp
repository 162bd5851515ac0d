// TLS failures in words. OpenSSL queues its errors per thread, oldest (the cause) first; we
// word the oldest and drop the rest, so no message is a queue dump and nothing stale reaches
// the next call.

#include "connection.hpp"

#include <openssl/err.h>

namespace sock SOCK_API {
namespace ssl {

namespace {

class ssl_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "sock.ssl"; }
    std::string message(int code) const override {
        switch (static_cast<errc>(code)) {
        case errc::certificate_verify_failed: return "certificate verify failed";
        case errc::unexpected_eof: return "unexpected end of stream (no close_notify)";
        case errc::peer_alert: return "the peer sent a TLS alert";
        case errc::protocol_error: return "TLS protocol error";
        case errc::bad_file: return "certificate or key not usable";
        case errc::not_connected: return "no TLS connection";
        }
        return "TLS error";
    }
};

}  // namespace

const std::error_category& ssl_category() noexcept {
    static const ssl_category_impl category;
    return category;
}

std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), ssl_category()}; }

error::error(std::error_code ec, const std::string& context, const std::string& detail)
    : sock::error(ec, context), message_(context + ": " + (detail.empty() ? ec.message() : detail)) {}

}  // namespace ssl
}  // namespace sock

namespace sock::ssl::detail {

std::string take_reason() {
    const unsigned long e = ERR_peek_error();
    std::string words;
    if (e != 0) {
        const char* r = ERR_reason_error_string(e);
        words = r != nullptr ? r : "reason " + std::to_string(ERR_GET_REASON(e));
    }
    ERR_clear_error();
    return words;
}

void throw_tls(std::error_code ec, const std::string& context, const std::string& detail) {
    if (ec.category() != ssl_category()) throw_error(ec, context);
    throw ssl::error(ec, context, detail);
}

}  // namespace sock::ssl::detail
