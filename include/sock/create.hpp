#pragma once

#include <sock/export.hpp>
#include <sock/socket.hpp>

#include <optional>
#include <utility>

namespace sock SOCK_API {

/// Connects to addr (Python 3.8's socket.create_connection): tries every address the name
/// resolves to, in order, each bounded by timeout; when all fail, the error lists each failure.
/// The returned socket keeps `timeout` as its timeout.
socket create_connection(const address& addr, timeout_t timeout = getdefaulttimeout(),
                         const std::optional<address>& source = std::nullopt);

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
