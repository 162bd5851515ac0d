#pragma once

// How a request ended: the error kinds greet-bench reports, and the rules that decide them.
// Pure code: error codes and bytes in, a verdict out.

#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>

namespace bench {

/// Why a request failed. The names are part of greet-bench's output (--json keys).
/// handshake: a TLS handshake failed for TLS's own reasons (a certificate that does not
/// verify, an alert, not TLS); its timeouts and resets are timeout and reset.
enum class error_kind : unsigned char { refused, reset, timeout, bad_reply, overload, handshake, other };

inline constexpr std::size_t error_kind_count = 7;
inline constexpr std::array<std::string_view, error_kind_count> error_kind_names = {
    "refused", "reset", "timeout", "bad_reply", "overload", "handshake", "other"};

constexpr std::string_view name_of(error_kind k) noexcept {
    return error_kind_names[static_cast<std::size_t>(k)];
}

/// The kind of a failed socket call: ECONNREFUSED is refused; ECONNRESET, EPIPE and
/// ECONNABORTED are reset; timed_out (ours or the kernel's) is timeout; the rest is other.
error_kind classify(std::error_code ec) noexcept;

/// True for errors that will repeat at once if retried at once (no ports or descriptors
/// left): the caller backs off instead of spinning.
bool needs_backoff(std::error_code ec) noexcept;

/// The greeting a message earns when --expect is not given (greet::reply_to).
std::string_view default_expected_reply(std::string_view message) noexcept;

/// Follows a greeting reply as it arrives, comparing it with the expected one in place: no
/// copy, no allocation. A reply is right when the stream ends (EOF) after exactly the
/// expected bytes, or resets after them (nginx's `return` closes with the request unread).
class reply_check {
public:
    explicit reply_check(std::string_view expected) noexcept : expected_(expected) {}

    /// Takes the next bytes of the reply; false once the reply can no longer be right
    /// (a differing byte, or more bytes than expected), when reading may stop.
    bool feed(std::span<const char> bytes) noexcept;

    /// The verdict once reading stopped: nullopt for success. `ec` is what ended the reading
    /// (empty for EOF, or for a stop after feed returned false).
    std::optional<error_kind> verdict(std::error_code ec) const noexcept;

    bool complete() const noexcept { return !wrong_ && matched_ == expected_.size(); }
    std::size_t received() const noexcept { return received_; }

private:
    std::string_view expected_;
    std::size_t matched_ = 0;
    std::size_t received_ = 0;
    bool wrong_ = false;
};

}  // namespace bench
