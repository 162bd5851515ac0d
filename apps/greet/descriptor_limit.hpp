#pragma once

// Descriptors are what a connection costs the kernel; every program here raises its limit.

#include <cstddef>

namespace greet {

/// Raises this process's RLIMIT_NOFILE soft limit to the hard one (10,000 connections need
/// it) and returns the soft limit now in force.
std::size_t raise_descriptor_limit() noexcept;

/// How many connections a server may hold with `descriptors` in all: the rest is left for
/// listeners, logs and the loops' own descriptors.
std::size_t connection_budget(std::size_t descriptors) noexcept;

}  // namespace greet
