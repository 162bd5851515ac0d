#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>
#include <optional>

namespace sock::opt {

/// A socket option with its C++ value type; use with socket::setsockopt / getsockopt.
template <class T>
struct option {
    int level;
    int name;
};

/// SO_LINGER: nullopt turns lingering off; a duration makes close() wait that long (0 = reset).
using linger_t = std::optional<std::chrono::seconds>;

inline constexpr option<bool> reuse_address{SOL_SOCKET, SO_REUSEADDR};
inline constexpr option<bool> reuse_port{SOL_SOCKET, SO_REUSEPORT};
inline constexpr option<bool> keepalive{SOL_SOCKET, SO_KEEPALIVE};
inline constexpr option<bool> broadcast{SOL_SOCKET, SO_BROADCAST};
inline constexpr option<int> receive_buffer_size{SOL_SOCKET, SO_RCVBUF};
inline constexpr option<int> send_buffer_size{SOL_SOCKET, SO_SNDBUF};
inline constexpr option<linger_t> linger{SOL_SOCKET, SO_LINGER};
inline constexpr option<bool> tcp_nodelay{IPPROTO_TCP, TCP_NODELAY};
inline constexpr option<bool> v6only{IPPROTO_IPV6, IPV6_V6ONLY};
/// Read-only: the pending error of the socket (SO_ERROR), cleared by reading it.
inline constexpr option<int> error{SOL_SOCKET, SO_ERROR};

}  // namespace sock::opt
