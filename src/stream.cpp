#include <sock/stream.hpp>

#include <poll.h>

#include <cerrno>
#include <utility>

namespace sock SOCK_API {

namespace {

class stream_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "sock.stream"; }
    std::string message(int code) const override {
        switch (static_cast<stream_errc>(code)) {
        case stream_errc::incomplete_read: return "end of stream before the read completed";
        case stream_errc::limit_overrun: return "separator not found within the reader's limit";
        case stream_errc::buffer_full: return "write buffer full; drain first";
        }
        return "unknown stream error";
    }
    // Callers that test for the generic conditions need not know this category.
    std::error_condition default_error_condition(int code) const noexcept override {
        switch (static_cast<stream_errc>(code)) {
        case stream_errc::incomplete_read: return std::errc::no_message;
        case stream_errc::limit_overrun: return std::errc::message_size;
        case stream_errc::buffer_full: return std::errc::no_buffer_space;
        }
        return {code, *this};
    }
};

}  // namespace

const std::error_category& stream_category() noexcept {
    static const stream_category_impl category;
    return category;
}

std::error_code make_error_code(stream_errc e) noexcept {
    return {static_cast<int>(e), stream_category()};
}

incomplete_read::incomplete_read(std::string partial, std::size_t expected,
                                 const std::string& context)
    : error(make_error_code(stream_errc::incomplete_read), context),
      partial_(std::move(partial)),
      expected_(expected) {}

std::error_code detail::wait_readable(int fd, std::chrono::steady_clock::time_point until) noexcept {
    for (;;) {
        const auto left = until - std::chrono::steady_clock::now();
        if (left.count() <= 0) return timeout_error();
        // Rounded up: a wait rounded down to 0 ms would spin until the deadline.
        const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
        ::pollfd p{fd, POLLIN, 0};
        const int rc = ::poll(&p, 1, ms > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(ms));
        if (rc > 0) return {};
        if (rc < 0 && errno != EINTR) return {errno, std::system_category()};
    }
}

limit_overrun::limit_overrun(const std::string& context)
    : error(make_error_code(stream_errc::limit_overrun), context) {}

}  // namespace sock
