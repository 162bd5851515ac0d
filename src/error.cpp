#include <sock/error.hpp>

#include <netdb.h>

namespace sock SOCK_API {

namespace {

class gai_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "getaddrinfo"; }
    std::string message(int code) const override { return ::gai_strerror(code); }
};

}  // namespace

std::string error_reason(std::error_code ec) {
    // Python words its own timeouts "timed out"; the kernel's ETIMEDOUT reads the same way.
    if (ec == std::errc::timed_out) return "timed out";
    return ec.message();
}

error::error(std::error_code ec, const std::string& context)
    : std::system_error(ec, context), message_(context + ": " + error_reason(ec)) {}

timeout::timeout(const std::string& context) : error(timeout_error(), context) {}

gaierror::gaierror(int eai_code, const std::string& context)
    : error(std::error_code(eai_code, gai_category()), context) {}

const std::error_category& gai_category() noexcept {
    static const gai_category_impl category;
    return category;
}

std::error_code timeout_error() noexcept { return std::make_error_code(std::errc::timed_out); }

void throw_error(std::error_code ec, const std::string& context) {
    if (ec.category() == gai_category()) throw gaierror(ec.value(), context);
    if (ec == std::errc::timed_out) throw timeout(ec, context);
    throw error(ec, context);
}

}  // namespace sock
