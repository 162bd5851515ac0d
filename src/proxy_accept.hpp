#pragma once

// The server's side of the PROXY protocol: taking a front door's header off an accepted
// connection before the handler sees its first byte (as HAProxy's conn_recv_proxy does).

#include <sock/async_socket.hpp>
#include <sock/task.hpp>

#include <chrono>
#include <string>

namespace sock::detail {

/// Reads conn's PROXY header within timeout (as a whole, however it arrives) and takes
/// exactly its bytes off the socket: the payload stays queued for the handler. When the
/// header names the client, conn.set_proxied records it. Returns "" on success, else why it
/// failed ("v2: CRC32C does not match", "timed out", ...); conn's timeout is restored.
task<std::string> take_proxy_header(async_socket& conn, std::chrono::nanoseconds timeout);

}  // namespace sock::detail
