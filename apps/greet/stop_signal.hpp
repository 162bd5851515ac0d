#pragma once

// SIGINT and SIGTERM as a flag that serving loops poll between bounded waits.

namespace greet {

/// Makes SIGINT and SIGTERM set the stop flag instead of killing the process. No SA_RESTART,
/// though sock retries EINTR itself: loops must wait in bounded steps and check the flag.
void install_stop_handlers();

/// True once SIGINT or SIGTERM arrived.
bool stop_requested() noexcept;

}  // namespace greet
