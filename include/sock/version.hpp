#pragma once

#include <sock/export.hpp>

namespace sock SOCK_API {

/// The library's version, "MAJOR.MINOR.PATCH".
inline constexpr const char* version = "0.1.0";

}  // namespace sock
