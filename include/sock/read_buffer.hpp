#pragma once

// The buffered readers' pure part: the bytes received but not yet returned, and the decision
// whether they answer a request (a line, a separator, n bytes, some bytes). No I/O here: the
// blocking reader (stream.hpp) and the coroutine reader (async_stream.hpp) feed it what their
// recv_into returned and ask it again, so both parse the same way and it is tested alone.

#include <sock/export.hpp>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <stdexcept>
#include <string_view>

namespace sock SOCK_API {
namespace detail {

/// What a reader call asks of the buffer.
struct read_request {
    enum class kind : unsigned char { until, exactly, some };
    kind what = kind::some;
    std::string_view sep{};  // until: the separator, non-empty
    std::size_t n = 0;       // exactly: the count; some: the most to return
    std::size_t scanned = 0; // until: bytes already searched, so a byte-by-byte line is O(n)
};

/// The answer to a request, given the bytes buffered now.
struct read_step {
    enum class kind : unsigned char { ready, more, overrun };
    kind what = kind::more;
    std::size_t len = 0;  // ready: the result's length, from the buffer's front
};

/// Bytes received and not yet consumed, in one block of at most `limit` bytes that grows by
/// doubling and then stays: after warming up, receiving and parsing allocate nothing.
/// Views it returns stay valid until the next prepare() (the readers' next call).
class read_buffer {
public:
    /// limit: the most a single request may need buffered (at least 1).
    explicit read_buffer(std::size_t limit) : limit_(limit) {
        if (limit == 0) throw std::invalid_argument("read_buffer: limit must be at least 1");
    }

    /// The most a request may need buffered.
    std::size_t limit() const noexcept { return limit_; }
    /// The bytes buffered and not consumed.
    std::string_view data() const noexcept { return {buf_.get() + begin_, end_ - begin_}; }
    std::size_t size() const noexcept { return end_ - begin_; }

    /// Whether r can be answered from data(), needs more bytes, or can never fit in the limit.
    read_step check(read_request& r) const noexcept {
        using step = read_step::kind;
        const auto have = data();
        switch (r.what) {
        case read_request::kind::some:
            if (r.n == 0) return {step::ready, 0};
            return have.empty() ? read_step{step::more, 0}
                                : read_step{step::ready, std::min(r.n, have.size())};
        case read_request::kind::exactly:
            if (r.n > limit_) return {step::overrun, 0};
            return have.size() >= r.n ? read_step{step::ready, r.n} : read_step{step::more, 0};
        case read_request::kind::until: {
            // Only the first `limit` bytes may hold the answer; a separator split across two
            // receives is found because the search restarts sep.size() - 1 bytes back.
            const auto window = have.substr(0, limit_);
            const auto back = std::min(r.scanned, r.sep.size() - 1);
            const auto from = r.scanned - back;
            // One byte (a line's "\n"): one memchr, not memchr and then memcmp per candidate.
            const auto at = r.sep.size() == 1 ? window.find(r.sep.front(), from)
                                              : window.find(r.sep, from);
            if (at != std::string_view::npos) return {step::ready, at + r.sep.size()};
            r.scanned = window.size();
            return window.size() >= limit_ ? read_step{step::overrun, 0} : read_step{step::more, 0};
        }
        }
        return {step::more, 0};
    }

    /// Consumes the first n bytes and returns them; the view lives until the next prepare().
    std::string_view take(std::size_t n) noexcept {
        const std::string_view out(buf_.get() + begin_, n);
        begin_ += n;
        return out;
    }

    /// Drops the first n bytes (or all, if fewer are buffered).
    void discard(std::size_t n) noexcept { begin_ += std::min(n, size()); }

    /// Room for the next receive, never empty while size() < limit(): compacts the unconsumed
    /// bytes to the front, or grows, only when the tail is full. Invalidates earlier views.
    std::span<char> prepare() {
        if (begin_ == end_) begin_ = end_ = 0;
        if (end_ == cap_) {
            if (begin_ > 0) {
                std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
                end_ -= begin_;
                begin_ = 0;
            } else if (cap_ < limit_) {
                grow();
            }
        }
        if (cap_ == 0) grow();
        return {buf_.get() + end_, cap_ - end_};
    }

    /// Records that the receive put n bytes at the start of prepare()'s span.
    void commit(std::size_t n) noexcept { end_ += n; }

private:
    void grow() {
        const std::size_t want = cap_ == 0 ? std::min<std::size_t>(limit_, 4096)
                                           : std::min(limit_, cap_ * 2);
        auto bigger = std::make_unique_for_overwrite<char[]>(want);
        if (end_ > begin_) std::memcpy(bigger.get(), buf_.get() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
        buf_ = std::move(bigger);
        cap_ = want;
    }

    std::unique_ptr<char[]> buf_;
    std::size_t cap_ = 0;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
    std::size_t limit_;
};

}  // namespace detail
}  // namespace sock
