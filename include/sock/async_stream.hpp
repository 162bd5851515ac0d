#pragma once

// Buffered reading and writing over a coroutine byte stream (asyncio's StreamReader and
// StreamWriter): `auto line = co_await reader.readline();`. Parsing is the blocking reader's
// (stream.hpp, read_buffer.hpp); only the receive is awaited here.

#include <sock/async_socket.hpp>
#include <sock/coro.hpp>
#include <sock/export.hpp>
#include <sock/stream.hpp>
#include <sock/task.hpp>

#include <algorithm>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

namespace sock SOCK_API {

/// The coroutine byte-stream shape: sock::async_socket has it, and so can a TLS stream over it.
template <class S>
concept async_byte_stream = requires(S& s, std::span<char> in, std::string_view out,
                                     std::error_code& ec, timeout_t t) {
    s.recv_into(in, ec);
    s.sendall(out, ec);
    { s.gettimeout() } -> std::convertible_to<timeout_t>;
    s.settimeout(t);
};

namespace detail {

/// Awaits `inner` (a receive) with the stream's timeout set to `left` only while the receive
/// suspends, which is when async_socket reads it to arm its timer: a writer of the same socket
/// that suspends meanwhile keeps the full timeout. For awaitables that suspend later than
/// their await_suspend (a task), the timeout stays shortened for the whole receive instead.
template <class Stream, class Inner>
class shortened_wait {
public:
    shortened_wait(Stream& s, Inner&& inner, timeout_t left) noexcept
        : s_(s), inner_(std::move(inner)), left_(left) {}

    bool await_ready() { return inner_.await_ready(); }
    template <class H>
    auto await_suspend(H h) {
        const auto saved = s_.gettimeout();
        s_.settimeout(left_);
        if constexpr (std::is_same_v<decltype(inner_.await_suspend(h)), void>) {
            inner_.await_suspend(h);
            s_.settimeout(saved);
        } else {
            auto r = inner_.await_suspend(h);
            s_.settimeout(saved);
            return r;
        }
    }
    decltype(auto) await_resume() { return inner_.await_resume(); }

private:
    Stream& s_;
    Inner&& inner_;
    timeout_t left_;
};

/// Whether Inner suspends within its await_suspend (returns void or bool), as async_socket's
/// awaiters do.
template <class Inner>
concept suspends_in_place = requires(Inner& a, std::coroutine_handle<> h) {
    { a.await_suspend(h) } -> std::convertible_to<bool>;
} || requires(Inner& a, std::coroutine_handle<> h) {
    { a.await_suspend(h) } -> std::same_as<void>;
};

}  // namespace detail

template <async_byte_stream Stream>
class stream_reader;

/// What stream_reader's calls return, to co_await: a call the buffer answers (most lines of a
/// burst) is answered in place, with no coroutine frame; else it runs as a task. Converts to
/// task<std::string_view> (when_all); sock::wait_for takes it as it is.
template <async_byte_stream Stream>
class [[nodiscard]] read_op {
public:
    bool await_ready() {
        if (r_.what == detail::read_request::kind::until && r_.sep.empty()) return false;
        auto done = detail::settle(reader_->buf_, r_, reader_->eof_, line_, ec_);
        if (!done) return false;
        got_ = *done;
        return true;
    }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) {
        slow_.emplace(reader_->call(name_, r_, line_, out_));
        return slow_->await_suspend(h);
    }
    std::string_view await_resume() {
        if (slow_) return slow_->await_resume();
        return reader_->finish(name_, r_, got_, ec_, out_);
    }
    operator task<std::string_view>() && { return reader_->call(name_, r_, line_, out_); }

private:
    friend class stream_reader<Stream>;
    read_op(stream_reader<Stream>* reader, const char* name, detail::read_request r, bool line,
            std::error_code* out) noexcept
        : reader_(reader), name_(name), r_(r), line_(line), out_(out) {}

    stream_reader<Stream>* reader_;
    const char* name_;
    detail::read_request r_;
    bool line_;
    std::error_code* out_;
    std::error_code ec_;
    std::string_view got_;
    std::optional<task<std::string_view>> slow_;
};

/// Reads lines, delimited records and counted bytes from a coroutine stream through a buffer
/// (asyncio's StreamReader). This class doesn't own the stream.
///
/// Same calls and meanings as buffered_reader (stream.hpp), awaited. Results are views into
/// the reader's buffer, valid until the next call on the reader. Each call is bounded by the
/// stream's timeout as a whole: each receive gets only the time left (async_socket's timeout
/// is shortened just while the receive arms its timer, so a writer of the same socket keeps
/// the full timeout). One call at a time.
template <async_byte_stream Stream = async_socket>
class stream_reader {
public:
    /// limit: the most one call may buffer (a line with its separator, readexactly's n).
    explicit stream_reader(Stream& s, std::size_t limit = default_stream_limit)
        : s_(&s), buf_(limit) {}

    using read_op = sock::read_op<Stream>;

    /// A line with its "\n"; see buffered_reader::readline for end of stream and overrun.
    read_op readline() { return {this, "readline", until_request("\n"), true, nullptr}; }
    read_op readline(std::error_code& ec) { return {this, "readline", until_request("\n"), true, &ec}; }
    /// Bytes up to and including sep (non-empty), which must outlive the call.
    read_op readuntil(std::string_view sep) { return {this, "readuntil", until_request(sep), false, nullptr}; }
    read_op readuntil(std::string_view sep, std::error_code& ec) {
        return {this, "readuntil", until_request(sep), false, &ec};
    }
    /// Exactly n bytes (n at most the limit); incomplete_read at end of stream.
    read_op readexactly(std::size_t n) { return {this, "readexactly", counted(n, true), false, nullptr}; }
    read_op readexactly(std::size_t n, std::error_code& ec) {
        return {this, "readexactly", counted(n, true), false, &ec};
    }
    /// Up to max bytes: what is buffered, else one receive's worth; "" at end of stream.
    read_op read(std::size_t max) { return {this, "read", counted(max, false), false, nullptr}; }
    read_op read(std::size_t max, std::error_code& ec) { return {this, "read", counted(max, false), false, &ec}; }

    /// The bytes received and not yet returned.
    std::string_view buffered() const noexcept { return buf_.data(); }
    /// Whether the stream has ended and everything buffered was returned.
    bool at_eof() const noexcept { return eof_ && buf_.size() == 0; }
    /// The most one call may buffer.
    std::size_t limit() const noexcept { return buf_.limit(); }
    /// The stream read from.
    Stream& stream() const noexcept { return *s_; }

private:
    friend class sock::read_op<Stream>;

    static detail::read_request until_request(std::string_view sep) {
        return {detail::read_request::kind::until, sep, 0, 0};
    }
    static detail::read_request counted(std::size_t n, bool exact) {
        return {exact ? detail::read_request::kind::exactly : detail::read_request::kind::some, {}, n, 0};
    }

    task<std::string_view> call(const char* name, detail::read_request r, bool line,
                                std::error_code* out) {
        std::error_code ec;
        std::string_view got;
        if (r.what == detail::read_request::kind::until && r.sep.empty()) {
            ec = std::make_error_code(std::errc::invalid_argument);
        } else {
            // The call's deadline is taken at its first receive: a call the buffer answers
            // (most lines of a burst) never reads the clock, and no time passes before that
            // receive but the parsing's.
            std::optional<detail::call_deadline> deadline;
            for (;;) {
                if (auto done = detail::settle(buf_, r, eof_, line, ec)) {
                    got = *done;
                    break;
                }
                // One receive, given only the time left of the call; the first one gets the
                // stream's own timeout, which is all of it.
                const auto room = buf_.prepare();
                std::size_t n = 0;
                const bool first = !deadline;
                if (first) deadline.emplace(s_->gettimeout());
                if (first || deadline->unbounded()) {
                    n = co_await s_->recv_into(room, ec);
                } else {
                    const auto left = deadline->left();
                    if (!left) {
                        ec = timeout_error();
                        break;
                    }
                    using inner = decltype(s_->recv_into(room, ec));
                    if constexpr (detail::suspends_in_place<inner>) {
                        n = co_await detail::shortened_wait<Stream, inner>(
                            *s_, s_->recv_into(room, ec), left);
                    } else {
                        const auto saved = s_->gettimeout();
                        s_->settimeout(left);
                        n = co_await s_->recv_into(room, ec);
                        s_->settimeout(saved);
                    }
                }
                if (ec) break;
                if (n == 0) eof_ = true;
                buf_.commit(n);
            }
        }
        co_return finish(name, r, got, ec, out);
    }

    // How a call ends, in the error_code form or the throwing one.
    std::string_view finish(const char* name, const detail::read_request& r, std::string_view got,
                            const std::error_code& ec, std::error_code* out) {
        if (out != nullptr) {
            *out = ec;
            return got;
        }
        if (ec) detail::throw_read_error(ec, got, r, name, *s_);
        return got;
    }

    Stream* s_;
    detail::read_buffer buf_;
    bool eof_ = false;
};

/// asyncio's `wait_for(reader.readline(), 2)`: the reader's call, bounded (see wait_for).
template <async_byte_stream Stream>
task<std::string_view> wait_for(read_op<Stream> op, std::chrono::nanoseconds timeout) {
    return sock::wait_for(task<std::string_view>(std::move(op)), timeout);
}

/// Gathers small writes into one send (asyncio's StreamWriter): write() only buffers,
/// `co_await drain()` sends. This class doesn't own the stream; unsent bytes are dropped with
/// the writer.
template <async_byte_stream Stream = async_socket>
class stream_writer {
public:
    /// bound: the most write() buffers, besides the batch a drain is sending.
    explicit stream_writer(Stream& s, std::size_t bound = default_stream_limit)
        : s_(&s), bound_(bound) {}

    /// Buffers data, never waiting. Data that would pass the bound is refused whole with
    /// stream_errc::buffer_full (nothing appended): drain() first, and send data larger than
    /// the bound with the stream's own sendall.
    void write(std::string_view data) {
        std::error_code ec;
        write(data, ec);
        if (ec) throw_error(ec, detail::context_of("write", *s_));
    }
    void write(std::string_view data, std::error_code& ec) {
        ec.clear();
        if (data.size() > bound_ - std::min(bound_, buf_.size())) {
            ec = make_error_code(stream_errc::buffer_full);
            return;
        }
        buf_.append(data);
    }
    /// Sends everything buffered, one sendall per batch, bounded by the stream's timeout; on
    /// failure the bytes not sent stay buffered, ahead of later writes. Other tasks may write()
    /// while it waits (their bytes go out in the same drain); one drain at a time, else
    /// operation_in_progress.
    task<> drain() { return send_all(nullptr); }
    task<> drain(std::error_code& ec) { return send_all(&ec); }

    /// The bytes written and not yet taken by a drain.
    std::string_view buffered() const noexcept { return buf_; }
    /// The most the writer buffers.
    std::size_t bound() const noexcept { return bound_; }
    /// The stream written to.
    Stream& stream() const noexcept { return *s_; }

private:
    task<> send_all(std::error_code* out) {
        std::error_code ec;
        if (draining_) {
            ec = std::make_error_code(std::errc::operation_in_progress);
        } else {
            // The batch on the wire is apart from buf_, so writes made meanwhile cannot move
            // it; the two strings swap roles and keep their capacity (no allocation).
            draining_ = true;
            while (!buf_.empty() && !ec) {
                sending_.swap(buf_);
                const std::size_t sent = co_await s_->sendall(sending_, ec);
                if (ec) {
                    sending_.erase(0, sent);
                    sending_.append(buf_);
                    sending_.swap(buf_);
                }
                sending_.clear();
            }
            draining_ = false;
        }
        if (out != nullptr) *out = ec;
        else if (ec) throw_error(ec, detail::context_of("drain", *s_));
    }

    Stream* s_;
    std::size_t bound_;
    std::string buf_;      // written, not yet handed to the stream
    std::string sending_;  // the batch a drain is sending
    bool draining_ = false;
};

}  // namespace sock
