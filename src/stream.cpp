#include <sock/stream.hpp>

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

limit_overrun::limit_overrun(const std::string& context)
    : error(make_error_code(stream_errc::limit_overrun), context) {}

}  // namespace sock
