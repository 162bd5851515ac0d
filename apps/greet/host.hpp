#pragma once

#include <sock/address.hpp>

#include <string>

namespace greet {

/// The family to use for a --host value: IPv6 for an IPv6 literal, else IPv4, so that names
/// such as "localhost" mean 127.0.0.1 as in the seed (Python's AF_INET socket).
sock::family family_for(const std::string& host);

}  // namespace greet
