#pragma once

#include <cstddef>

namespace bench {

/// Raises this process's RLIMIT_NOFILE soft limit to the hard one (10,000 connections need
/// it) and returns the soft limit now in force.
std::size_t raise_descriptor_limit() noexcept;

}  // namespace bench
