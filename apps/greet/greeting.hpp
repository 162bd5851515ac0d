#pragma once

// The seed's greeting protocol as pure code: bytes in, bytes out, no sockets.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace greet {

/// The seed's address: sock.bind(('localhost', 8001)).
inline constexpr std::string_view default_host = "localhost";
inline constexpr std::uint16_t default_port = 8001;
/// The seed's sock.listen(5).
inline constexpr int default_backlog = 5;
/// The seed's connection.settimeout(5), in seconds.
inline constexpr double default_timeout_seconds = 5.0;
/// The seed's connection.recv(1024): a message is at most this many bytes; the rest is not read.
inline constexpr std::size_t max_message = 1024;

/// What the client sends to be let in (the seed's sock.send('1')).
inline constexpr std::string_view password = "1";
inline constexpr std::string_view welcome = "welcome to server!";
inline constexpr std::string_view go_out = "please go out!";

/// The whole protocol: welcome for exactly "1", go_out for anything else, including "",
/// "1\n" and "11". The result views static storage.
std::string_view reply_to(std::string_view message) noexcept;

}  // namespace greet
