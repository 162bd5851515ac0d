#pragma once

#include <sock/export.hpp>
#include <sock/socket.hpp>

#include <chrono>
#include <optional>
#include <system_error>
#include <utility>

namespace sock SOCK_API {

/// RFC 8305's Connection Attempt Delay: how long create_connection gives one address before
/// it also starts the next (asyncio's happy_eyeballs_delay; the RFC recommends 250 ms).
inline constexpr std::chrono::milliseconds default_happy_eyeballs_delay{250};

/// Connects to addr (Python's socket.create_connection) with Happy Eyeballs (RFC 8305): the
/// addresses the name resolves to, families alternating, are tried in turn, the next one
/// started when the last fails or after happy_eyeballs_delay (zero: all at once; nullopt: one
/// at a time); the first to connect wins and the others are closed. timeout bounds the whole
/// call and stays the socket's timeout. When all fail, the error lists each address's cause.
/// Negative durations throw std::invalid_argument in both forms.
socket create_connection(const address& addr, timeout_t timeout = getdefaulttimeout(),
                         const std::optional<address>& source = std::nullopt,
                         timeout_t happy_eyeballs_delay = default_happy_eyeballs_delay);
/// Reports a failed connect in ec (the last address's cause) and returns an invalid socket.
socket create_connection(const address& addr, timeout_t timeout,
                         const std::optional<address>& source, timeout_t happy_eyeballs_delay,
                         std::error_code& ec);

/// Options of create_server, named as Python's keyword arguments.
struct server_options {
    /// Family for host:port addresses; Unix paths always use family::local.
    sock::family family = sock::family::inet;
    /// Listen queue length; Python's default when None.
    int backlog = 128;
    /// Let several sockets bind the same port (SO_REUSEPORT), for one listener per thread.
    bool reuse_port = false;
    /// With family::inet6, also accept IPv4 clients (IPV6_V6ONLY off).
    bool dualstack_ipv6 = false;
};

/// A listening socket on addr (Python 3.8's socket.create_server): SO_REUSEADDR on (not for
/// Unix paths), bound, listening. A stale Unix socket file is not removed: that is the caller's.
socket create_server(const address& addr, const server_options& options = {});

/// True when this host can listen on IPv6 and IPv4 with one socket.
bool has_dualstack_ipv6() noexcept;

/// Two connected sockets (Python's socket.socketpair); family::unix and stream by default.
std::pair<socket, socket> socketpair(sock::family fam = sock::family::local,
                                     sock::kind type = sock::kind::stream);

}  // namespace sock
