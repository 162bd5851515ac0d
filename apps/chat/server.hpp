#pragma once

// chat-server's work: every line a client sends goes to every other client, on the
// sock::server engine; the room (room.hpp) decides who hears what.

#include "chat/room.hpp"

#include <sock/async_socket.hpp>
#include <sock/socket.hpp>
#include <sock/task.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace chat {

struct server_config {
    std::string host{"127.0.0.1"};
    /// Next to greet-server's 8001.
    std::uint16_t port = 8002;
    /// Event loops (threads); 0 = one per core.
    unsigned threads = 0;
    /// Connections served at once; 0 = as many as the descriptor limit allows.
    std::size_t max_connections = 0;
    /// Share the port with other processes that ask for it too (SO_REUSEPORT).
    bool reuse_port = false;
    /// The most bytes held for one client (queued or being sent); a client that falls
    /// further behind is disconnected. At least max_line, so that any line fits.
    std::size_t max_backlog = 1024 * 1024;
};

/// Binds as configured (or serves the `inherited` listening sockets instead: socket
/// activation), prints "listening on ADDRESS" to stdout for each, and relays lines until
/// SIGINT or SIGTERM, then lets connections go on for the grace period and returns. Throws
/// sock::error when it cannot listen.
void run_server(const server_config& config, std::vector<sock::socket> inherited = {});

/// One client of the room: joins it, says each line the client sends, sends it the others'
/// lines, leaves at end of stream (after sending what is still queued for it). A line over
/// max_line gets line_too_long_error() and ends the connection; a backlog over
/// max_backlog ends it at once (a reset), logged. `log` takes one line; all must outlive
/// the task.
sock::task<> serve_client(sock::async_socket conn, room& r, std::size_t max_backlog,
                          const std::function<void(std::string_view)>& log);

}  // namespace chat
