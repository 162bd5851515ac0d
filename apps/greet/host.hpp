#pragma once

#include <sock/address.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace greet {

/// The family to use for a --host value: IPv6 for an IPv6 literal, else IPv4, so that names
/// such as "localhost" mean 127.0.0.1 as in the seed (Python's AF_INET socket).
sock::family family_for(const std::string& host);

/// The numeric address a server binds for --host and --port: a name is resolved once, for
/// the family family_for picks ("localhost" means 127.0.0.1, as the seed's AF_INET socket).
sock::address listen_address(const std::string& host, std::uint16_t port, sock::kind type);

/// "HOST:PORT" split in two (an IPv6 address in brackets: "[::1]:9100"); std::invalid_argument
/// saying what is wrong ("9100 has no host; use HOST:PORT").
std::pair<std::string, std::uint16_t> split_host_port(std::string_view text);

}  // namespace greet
