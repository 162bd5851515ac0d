#pragma once

#include <sock/export.hpp>

#include <sys/socket.h>

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace sock SOCK_API {

// GNU modes predefine `unix` as a macro; keep Python's name usable in strict modes.
#pragma push_macro("unix")
#undef unix

/// Address families, with Python's meanings (AF_INET, AF_INET6, AF_UNIX).
enum class family : int {
    unspec = AF_UNSPEC,
    inet = AF_INET,
    inet6 = AF_INET6,
    unix = AF_UNIX,
    local = AF_UNIX,  ///< POSIX's name for unix, usable where `unix` is a macro.
};

#pragma pop_macro("unix")

/// Socket types (Python's SocketKind: SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_SEQPACKET).
enum class kind : int {
    stream = SOCK_STREAM,
    dgram = SOCK_DGRAM,
    raw = SOCK_RAW,
    seqpacket = SOCK_SEQPACKET,
};

/// Where a socket binds or connects: a host and port (Python's ("localhost", 8001) tuple) or a
/// Unix socket path; names are resolved when used, numeric addresses are kept as they are.
class address {
public:
    /// The empty address (no family); binding to it fails.
    address() = default;
    /// A host (name, IPv4 or IPv6 literal, or "" for any) and a port, as Python's (host, port).
    address(std::string host, std::uint16_t port);
    /// Same as above; lets `{"localhost", 8001}` pick this constructor without casts.
    address(const char* host, std::uint16_t port) : address(std::string(host), port) {}
    /// Takes the port in whatever integer type the caller has (`int port`, `unsigned`, a
    /// `long` from strtol...); outside 0-65535 it throws std::out_of_range naming the value.
    template <std::integral Port>
        requires(!std::same_as<Port, std::uint16_t> && !std::same_as<Port, bool>)
    address(std::string host, Port port) : address(std::move(host), checked_port(port)) {}
    template <std::integral Port>
        requires(!std::same_as<Port, std::uint16_t> && !std::same_as<Port, bool>)
    address(const char* host, Port port) : address(std::string(host), checked_port(port)) {}
    /// A Unix socket path; a leading '@' or NUL byte names an abstract socket (Linux).
    static address unix_path(std::string path);
    /// Copies a kernel socket address (from accept, recvfrom, getsockname...).
    static address from_native(const ::sockaddr* sa, ::socklen_t len);

    /// The family this address implies: unix for paths, inet/inet6 for numeric hosts,
    /// unspec for names that still need resolving.
    sock::family family() const noexcept;
    bool is_unix() const noexcept { return kind_ == tag::unix_path; }
    bool empty() const noexcept { return kind_ == tag::none; }
    /// The host as given, or numeric for kernel addresses; empty for Unix paths.
    const std::string& host() const noexcept;
    std::uint16_t port() const noexcept { return port_; }
    /// The Unix path (abstract names start with '\0'); empty for host and port.
    const std::string& path() const noexcept;

    /// "127.0.0.1:8001", "[::1]:8001", "localhost:8001", "/run/greet.sock" or "@abstract".
    std::string to_string() const;

    /// The kernel form, when this address is numeric or a path; false for names.
    bool to_native(::sockaddr_storage& out, ::socklen_t& len) const noexcept;

    friend bool operator==(const address&, const address&) = default;

private:
    [[noreturn]] static void throw_bad_port(long long port);
    [[noreturn]] static void throw_bad_port(unsigned long long port);
    template <std::integral Port>
    static std::uint16_t checked_port(Port port) {
        if (!std::in_range<std::uint16_t>(port)) {
            if constexpr (std::is_signed_v<Port>) throw_bad_port(static_cast<long long>(port));
            else throw_bad_port(static_cast<unsigned long long>(port));
        }
        return static_cast<std::uint16_t>(port);
    }

    enum class tag : std::uint8_t { none, host_port, unix_path };
    tag kind_ = tag::none;
    std::string host_;
    std::uint16_t port_ = 0;
    std::uint32_t scope_id_ = 0;
};

/// Parses a command-line address: "host:port", "[v6]:port", ":port" (any host),
/// "host" alone (default_port), or "unix:/path" / "/path" for Unix sockets.
/// Returns false with ec set to invalid_argument on malformed text or a bad port.
bool parse_address(std::string_view text, std::uint16_t default_port, address& out,
                   std::error_code& ec);
/// Throwing form of parse_address; the message names the text and what is wrong.
address parse_address(std::string_view text, std::uint16_t default_port);

/// Parses a port number 0..65535; false on anything else (sign, spaces, overflow, names).
bool parse_port(std::string_view text, std::uint16_t& out) noexcept;

/// One result of getaddrinfo (Python's 5-tuple: family, type, proto, canonname, sockaddr).
struct addrinfo {
    sock::family family;
    sock::kind type;
    int proto;
    std::string canonname;
    address addr;
};

/// Resolves host and port like Python's socket.getaddrinfo; flags are AI_* values.
/// An empty host with AI_PASSIVE means "any address". Throws gaierror.
std::vector<addrinfo> getaddrinfo(const std::string& host, std::uint16_t port,
                                  sock::family fam = sock::family::unspec,
                                  sock::kind type = sock::kind::stream, int flags = 0);
/// Non-throwing form; on failure returns empty and sets ec in gai_category() (or system).
std::vector<addrinfo> getaddrinfo(const std::string& host, std::uint16_t port, sock::family fam,
                                  sock::kind type, int flags, std::error_code& ec);

}  // namespace sock
