#include "bench/outcome.hpp"

#include "greet/greeting.hpp"

#include <cerrno>
#include <cstring>

namespace bench {

error_kind classify(std::error_code ec) noexcept {
    if (ec == std::errc::timed_out) return error_kind::timeout;
    if (ec.category() != std::system_category() && ec.category() != std::generic_category())
        return error_kind::other;
    switch (ec.value()) {
    case ECONNREFUSED:
        return error_kind::refused;
    case ECONNRESET:
    case EPIPE:
    case ECONNABORTED:
        return error_kind::reset;
    default:
        return error_kind::other;
    }
}

bool needs_backoff(std::error_code ec) noexcept {
    if (ec.category() != std::system_category() && ec.category() != std::generic_category())
        return false;
    switch (ec.value()) {
    case EADDRNOTAVAIL:
    case EADDRINUSE:
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
    case EAGAIN:  // a Unix socket's listen queue is full
        return true;
    default:
        return false;
    }
}

std::string_view default_expected_reply(std::string_view message) noexcept {
    return greet::reply_to(message);
}

bool reply_check::feed(std::span<const char> bytes) noexcept {
    received_ += bytes.size();
    if (wrong_) return false;
    if (bytes.empty()) return true;
    const std::size_t left = expected_.size() - matched_;
    if (bytes.size() > left ||
        std::memcmp(bytes.data(), expected_.data() + matched_, bytes.size()) != 0) {
        wrong_ = true;
        return false;
    }
    matched_ += bytes.size();
    return true;
}

std::optional<error_kind> reply_check::verdict(std::error_code ec) const noexcept {
    if (wrong_) return error_kind::bad_reply;
    if (!ec) {
        if (complete()) return std::nullopt;
        return error_kind::bad_reply;  // short (or empty) reply, then EOF
    }
    if (ec == std::errc::connection_reset && complete()) return std::nullopt;
    return classify(ec);
}

}  // namespace bench
