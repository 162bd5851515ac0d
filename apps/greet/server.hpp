#pragma once

// greet-server's work: listen, then serve one client (or datagram) at a time until stopped.

#include <sock/socket.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace greet {

struct server_config {
    std::string host{"localhost"};
    std::uint16_t port = 8001;
    int backlog = 5;
    /// How long a client has to send its message.
    std::chrono::nanoseconds timeout = std::chrono::seconds(5);
    /// Non-empty: serve on this Unix stream socket instead of TCP.
    std::string unix_path;
    /// Serve UDP datagrams instead of TCP connections.
    bool udp = false;
};

/// Binds as configured, prints "listening on ADDRESS" to stdout, and serves until SIGINT or
/// SIGTERM (see stop_signal.hpp). Throws sock::error when it cannot listen; failures of one
/// client are logged to stderr and never end the loop.
void run_server(const server_config& config);

/// Serves one accepted connection as the seed does: the message is what the first
/// recv(max_message) returns, the reply follows, then the connection closes. Throws
/// sock::timeout when the client sent nothing in time (nothing is replied) and sock::error on
/// other failures; returns the message.
std::string serve_connection(sock::socket& conn, std::chrono::nanoseconds timeout);

/// Closes conn so that data already sent survives: sends FIN, then reads and discards what the
/// peer still sends, for a bounded time and amount, before the close.
void graceful_close(sock::socket& conn);

}  // namespace greet
