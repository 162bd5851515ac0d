#pragma once

// Buffered reading and writing over a blocking byte stream (Python's makefile(), with asyncio's
// StreamReader verbs): readline, readuntil, readexactly, read; a writer that gathers small
// writes into one sendall. The coroutine versions are in async_stream.hpp; both parse through
// the same detail::read_buffer (read_buffer.hpp).

#include <sock/error.hpp>
#include <sock/export.hpp>
#include <sock/read_buffer.hpp>
#include <sock/socket.hpp>

#include <chrono>
#include <concepts>
#include <algorithm>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace sock SOCK_API {

/// The errors of the buffered streams, in stream_category().
enum class stream_errc {
    /// End of stream before the read completed (asyncio's IncompleteReadError); equals no_message.
    incomplete_read = 1,
    /// The separator is not within the reader's limit (asyncio's LimitOverrunError); equals message_size.
    limit_overrun,
    /// A write would pass the async writer's bound; drain first. Equals no_buffer_space.
    buffer_full,
};

}  // namespace sock

template <>
struct std::is_error_code_enum<sock::stream_errc> : std::true_type {};

namespace sock SOCK_API {

/// The category of stream_errc; message() says what happened in words.
const std::error_category& stream_category() noexcept;
/// Makes stream_errc usable as a std::error_code.
std::error_code make_error_code(stream_errc e) noexcept;

/// End of stream before a read completed; partial() holds the bytes that did arrive, which the
/// reader no longer holds (Python's asyncio.IncompleteReadError).
class incomplete_read : public error {
public:
    /// expected: the count readexactly wanted, or 0 for a separator that never came.
    incomplete_read(std::string partial, std::size_t expected, const std::string& context);
    /// The bytes that arrived before the end of stream.
    const std::string& partial() const noexcept { return partial_; }
    /// The count readexactly wanted; 0 for readuntil.
    std::size_t expected() const noexcept { return expected_; }

private:
    std::string partial_;
    std::size_t expected_;
};

/// No separator within the reader's limit, or readexactly asked more than the limit
/// (Python's asyncio.LimitOverrunError); code() is stream_errc::limit_overrun.
class limit_overrun : public error {
public:
    explicit limit_overrun(const std::string& context);
};

/// The default bound of a reader's buffer and of a writer's (asyncio's 64 KiB).
inline constexpr std::size_t default_stream_limit = 64 * 1024;

/// The blocking byte-stream shape the buffered reader and writer need: sock::socket has it,
/// and so can a TLS stream over it.
template <class S>
concept byte_stream = requires(S& s, std::span<char> in, std::string_view out, std::error_code& ec,
                               timeout_t t) {
    { s.recv_into(in, 0, ec) } -> std::convertible_to<std::size_t>;
    { s.sendall(out, 0, ec) } -> std::convertible_to<std::size_t>;
    { s.gettimeout() } -> std::convertible_to<timeout_t>;
    s.settimeout(t);
};

namespace detail {

/// One deadline for a whole reader call: each receive gets only the time still left.
class call_deadline {
public:
    explicit call_deadline(timeout_t t) {
        if (t && t->count() > 0) at_ = std::chrono::steady_clock::now() + *t;
    }
    /// Whether the stream's own timeout already bounds each receive as the call's should.
    bool unbounded() const noexcept { return !at_; }
    std::chrono::steady_clock::time_point at() const noexcept { return *at_; }
    /// The time left, or nullopt once the deadline has passed.
    timeout_t left() const noexcept {
        const auto rest = *at_ - std::chrono::steady_clock::now();
        if (rest.count() <= 0) return std::nullopt;
        return std::chrono::duration_cast<std::chrono::nanoseconds>(rest);
    }

private:
    std::optional<std::chrono::steady_clock::time_point> at_;
};

/// Waits until fd is readable, or has an error or hang-up to report; timeout_error() once
/// `until` passes. For sock::socket, whose descriptor is non-blocking whenever its timeout is
/// positive: the receive after it then does not wait.
std::error_code wait_readable(int fd, std::chrono::steady_clock::time_point until) noexcept;

// settle's answers other than a result already buffered (an overrun, more to receive, end
// of stream): apart, so that the common one inlines into the reader's calls.
inline std::optional<std::string_view> settle_rest(read_buffer& b, const read_request& r, read_step step,
                                                   bool eof, bool line, std::error_code& ec) {
    if (step.what == read_step::kind::overrun) {
        // readline, as asyncio's, drops the over-long line's buffered bytes so the next call
        // makes progress; readuntil and readexactly leave them for the caller to inspect.
        if (line) b.discard(b.size());
        ec = make_error_code(stream_errc::limit_overrun);
        return std::string_view();
    }
    if (!eof) return std::nullopt;
    // readline, as asyncio's, returns the last unterminated line as it is; read() returns "".
    if (r.what != read_request::kind::some && !line) ec = make_error_code(stream_errc::incomplete_read);
    return b.take(b.size());
}

/// Decides whether a reader call ends with what is buffered: its result (ec set for an
/// incomplete read or an overrun), or nullopt when it needs another receive. Shared by the
/// blocking and the coroutine reader.
inline std::optional<std::string_view> settle(read_buffer& b, read_request& r, bool eof, bool line,
                                              std::error_code& ec) {
    const auto step = b.check(r);
    if (step.what == read_step::kind::ready) [[likely]] return b.take(step.len);
    return settle_rest(b, r, step, eof, line, ec);
}

/// "call address" for error messages, when the stream can describe itself.
template <class S>
std::string context_of(const char* call, const S& s) {
    if constexpr (requires { s.describe(); }) return std::string(call) + " " + s.describe();
    else if constexpr (requires { s.raw().describe(); }) return std::string(call) + " " + s.raw().describe();
    else return call;
}

/// The throwing form's exception for a failed reader call.
template <class S>
[[noreturn]] void throw_read_error(std::error_code ec, std::string_view partial, const read_request& r,
                                   const char* call, const S& s) {
    const auto context = context_of(call, s);
    if (ec == stream_errc::incomplete_read)
        throw incomplete_read(std::string(partial), r.what == read_request::kind::exactly ? r.n : 0,
                              context);
    if (ec == stream_errc::limit_overrun) throw limit_overrun(context);
    throw_error(ec, context);
}

}  // namespace detail

/// Reads lines, delimited records and counted bytes from a blocking stream through a buffer
/// (Python's makefile("rb") with asyncio's verbs). This class doesn't own the stream.
///
/// Results are views into the reader's buffer, valid until the next call on the reader; copy
/// them (std::string(view)) to keep them. Each call is bounded by the stream's timeout as a
/// whole, however many receives it takes: on a sock::socket the reader waits for the time
/// left itself; on other streams it sets the stream's timeout to the time left around each
/// receive and restores it, so nothing else may use that stream's timeout meanwhile. A call that fails with a system error or timeout may leave bytes it received
/// buffered for the next call.
template <byte_stream Stream = socket>
class buffered_reader {
public:
    /// limit: the most one call may buffer (a line with its separator, readexactly's n).
    explicit buffered_reader(Stream& s, std::size_t limit = default_stream_limit)
        : s_(&s), buf_(limit) {}

    /// A line with its "\n"; at end of stream the last line as it is (without "\n"), then "".
    /// Never incomplete_read: that is readuntil("\n"), which reports a missing "\n". A line over the limit throws
    /// limit_overrun after discarding the bytes buffered of it (asyncio's readline): the rest
    /// of that line, when it arrives, reads as the next line.
    std::string_view readline() { return call("readline", line_request(), true, nullptr); }
    std::string_view readline(std::error_code& ec) { return call("readline", line_request(), true, &ec); }
    /// Bytes up to and including sep (non-empty). Over the limit: limit_overrun, the bytes left
    /// buffered. At end of stream: incomplete_read with the bytes left, which are consumed.
    std::string_view readuntil(std::string_view sep) {
        return call("readuntil", until_request(sep), false, nullptr);
    }
    std::string_view readuntil(std::string_view sep, std::error_code& ec) {
        return call("readuntil", until_request(sep), false, &ec);
    }
    /// Exactly n bytes (n at most the limit, else limit_overrun); incomplete_read at end of stream.
    std::string_view readexactly(std::size_t n) { return call("readexactly", counted(n, true), false, nullptr); }
    std::string_view readexactly(std::size_t n, std::error_code& ec) {
        return call("readexactly", counted(n, true), false, &ec);
    }
    /// Up to max bytes: what is buffered, else one receive's worth; "" at end of stream.
    std::string_view read(std::size_t max) { return call("read", counted(max, false), false, nullptr); }
    std::string_view read(std::size_t max, std::error_code& ec) {
        return call("read", counted(max, false), false, &ec);
    }

    /// The bytes received and not yet returned.
    std::string_view buffered() const noexcept { return buf_.data(); }
    /// Whether the stream has ended and everything buffered was returned (asyncio's at_eof).
    bool at_eof() const noexcept { return eof_ && buf_.size() == 0; }
    /// The most one call may buffer.
    std::size_t limit() const noexcept { return buf_.limit(); }
    /// The stream read from.
    Stream& stream() const noexcept { return *s_; }

private:
    static detail::read_request line_request() { return until_request("\n"); }
    static detail::read_request until_request(std::string_view sep) {
        return {detail::read_request::kind::until, sep, 0, 0};
    }
    static detail::read_request counted(std::size_t n, bool exact) {
        return {exact ? detail::read_request::kind::exactly : detail::read_request::kind::some, {}, n, 0};
    }

    std::string_view call(const char* name, detail::read_request r, bool line, std::error_code* out) {
        std::error_code ec;
        std::string_view got;
        if (r.what == detail::read_request::kind::until && r.sep.empty()) {
            ec = std::make_error_code(std::errc::invalid_argument);
        } else {
            const detail::call_deadline deadline(s_->gettimeout());
            for (;;) {
                if (auto done = detail::settle(buf_, r, eof_, line, ec)) {
                    got = *done;
                    break;
                }
                if ((ec = fill(deadline))) break;
            }
        }
        if (out != nullptr) {
            *out = ec;
            return got;
        }
        if (ec) detail::throw_read_error(ec, got, r, name, *s_);
        return got;
    }

    // One receive into the buffer, given only the time left of the call.
    std::error_code fill(const detail::call_deadline& deadline) {
        const auto room = buf_.prepare();
        std::error_code ec;
        std::size_t n = 0;
        if (deadline.unbounded()) {
            n = s_->recv_into(room, 0, ec);
        } else if constexpr (std::is_same_v<Stream, socket>) {
            // Waits here for the time left, so the socket's timeout is never changed (another
            // thread may be sending on it); the receive then finds its bytes at once.
            if ((ec = detail::wait_readable(s_->fileno(), deadline.at()))) return ec;
            n = s_->recv_into(room, 0, ec);
        } else {
            const auto left = deadline.left();
            if (!left) return timeout_error();
            const auto saved = s_->gettimeout();
            try {
                s_->settimeout(left);
            } catch (const std::system_error& e) {
                return e.code();
            }
            n = s_->recv_into(room, 0, ec);
            try {
                s_->settimeout(saved);
            } catch (const std::system_error& e) {
                if (!ec) ec = e.code();
            }
        }
        if (ec) return ec;
        if (n == 0) eof_ = true;
        buf_.commit(n);
        return {};
    }

    Stream* s_;
    detail::read_buffer buf_;
    bool eof_ = false;
};

/// Gathers small writes into one sendall (Python's makefile("wb")). This class doesn't own
/// the stream. Unflushed bytes are dropped with the writer: call flush() first.
template <byte_stream Stream = socket>
class buffered_writer {
public:
    /// bound: the most the writer buffers; a write that would pass it flushes first.
    explicit buffered_writer(Stream& s, std::size_t bound = default_stream_limit)
        : s_(&s), bound_(bound) {}

    /// Buffers data. When it would pass the bound, flushes first; data of the bound's size or
    /// more then goes straight out with its own sendall, without a copy.
    void write(std::string_view data) {
        std::error_code ec;
        write(data, ec);
        if (ec) throw_error(ec, detail::context_of("write", *s_));
    }
    void write(std::string_view data, std::error_code& ec) {
        ec.clear();
        if (data.size() > bound_ - std::min(bound_, buf_.size())) {
            flush(ec);
            if (ec) return;
            if (data.size() >= bound_) {
                s_->sendall(data, 0, ec);
                return;
            }
        }
        buf_.append(data);
    }
    /// Sends everything buffered (one sendall, bounded by the stream's timeout). On failure the
    /// bytes not sent stay buffered.
    void flush() {
        std::error_code ec;
        flush(ec);
        if (ec) throw_error(ec, detail::context_of("flush", *s_));
    }
    void flush(std::error_code& ec) {
        ec.clear();
        if (buf_.empty()) return;
        const auto sent = s_->sendall(buf_, 0, ec);
        if (ec) buf_.erase(0, sent);
        else buf_.clear();  // keeps the capacity: no allocation once warmed up
    }

    /// The bytes written and not yet flushed.
    std::string_view buffered() const noexcept { return buf_; }
    /// The most the writer buffers.
    std::size_t bound() const noexcept { return bound_; }
    /// The stream written to.
    Stream& stream() const noexcept { return *s_; }

private:
    Stream* s_;
    std::size_t bound_;
    std::string buf_;
};

}  // namespace sock
