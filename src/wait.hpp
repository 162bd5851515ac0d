#pragma once

#include <poll.h>

#include <chrono>
#include <optional>
#include <span>
#include <system_error>

namespace sock::detail {

using clock = std::chrono::steady_clock;
/// When a call must give up; nullopt waits for ever.
using deadline_t = std::optional<clock::time_point>;

/// Waits until fd reports one of `events` (POLLIN, POLLOUT) or the deadline passes.
/// Returns timeout_error() on expiry; an error or hang-up counts as ready, so the next call
/// on the descriptor reports it.
std::error_code wait_ready(int fd, short events, deadline_t deadline) noexcept;

/// Waits until any of fds reports its events (their revents are set) or the deadline passes;
/// a passed deadline still polls once without waiting, so what is ready already is seen.
/// Returns timeout_error() when nothing was ready by the deadline.
std::error_code wait_any(std::span<::pollfd> fds, deadline_t deadline) noexcept;

}  // namespace sock::detail
