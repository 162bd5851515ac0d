#pragma once

// The engine set-up that echo-server and chat-server share (greet-server tunes its own).

#include <sock/server.hpp>

#include <cstddef>

namespace greet {

/// A sock::server_config for clients that may connect and wait before they speak, and that
/// wait for each small reply: no TCP_DEFER_ACCEPT, no Nagle. `max_connections` 0 means what
/// the descriptor limit allows (raised to its hard limit here). The engine logs to stderr,
/// a line per write (cli::write_line). Where to listen is the caller's.
sock::server_config interactive_engine(unsigned threads, std::size_t max_connections,
                                       bool reuse_port);

}  // namespace greet
