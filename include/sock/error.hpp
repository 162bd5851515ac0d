#pragma once

#include <sock/export.hpp>

#include <string>
#include <system_error>

namespace sock SOCK_API {

/// A failed socket call; what() names the call, the address and the cause, e.g.
/// "bind 127.0.0.1:8001: Address already in use" (Python's OSError / socket.error).
class error : public std::system_error {
public:
    /// `context` is the call and its address, e.g. "bind 127.0.0.1:8001".
    error(std::error_code ec, const std::string& context);
    const char* what() const noexcept override { return message_.c_str(); }

private:
    std::string message_;
};

/// A call that ran past the socket's timeout, or a kernel ETIMEDOUT (Python's socket.timeout).
class timeout : public error {
public:
    explicit timeout(const std::string& context);
    timeout(std::error_code ec, const std::string& context) : error(ec, context) {}
};

/// A name that getaddrinfo could not resolve; code() is in gai_category() (Python's socket.gaierror).
class gaierror : public error {
public:
    gaierror(int eai_code, const std::string& context);
};

/// The category of getaddrinfo's EAI_* codes; message() is gai_strerror's text.
const std::error_category& gai_category() noexcept;

/// The error code our timeouts carry (std::errc::timed_out), reported as "timed out".
std::error_code timeout_error() noexcept;

/// The cause as error messages word it: "timed out" for timeouts, else ec.message().
std::string error_reason(std::error_code ec);

/// Throws the sock exception matching ec (timeout, gaierror or error) with the given context.
[[noreturn]] void throw_error(std::error_code ec, const std::string& context);

}  // namespace sock
