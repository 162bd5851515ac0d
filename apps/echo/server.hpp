#pragma once

// echo-server's work: the classic echo service on the sock::server engine, for the
// ping-pong benchmark.

#include "greet/tls.hpp"

#include <sock/async_socket.hpp>
#include <sock/socket.hpp>
#include <sock/task.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace echo {

struct server_config {
    std::string host{"127.0.0.1"};
    /// Not echo's well-known 7: below 1024 a port needs root (CAP_NET_BIND_SERVICE).
    std::uint16_t port = 8007;
    /// Non-empty: serve on this Unix stream socket instead of TCP.
    std::string unix_path;
    /// Event loops (threads); 0 = one per core.
    unsigned threads = 0;
    /// Connections served at once; 0 = as many as the descriptor limit allows.
    std::size_t max_connections = 0;
    /// A connection with nothing to read for this long is closed; 0 = never.
    std::chrono::nanoseconds idle_timeout{0};
    /// Share the port with other processes that ask for it too (SO_REUSEPORT), for a restart
    /// without downtime; without it a port in use is an error.
    bool reuse_port = false;
    /// With a certificate: TLS on every connection (the handshake bounded by idle_timeout,
    /// else by 60 s).
    greet::tls::server_files tls;
};

/// Binds as configured (or serves the `inherited` listening sockets instead: socket
/// activation), prints "listening on ADDRESS" to stdout for each, and echoes until SIGINT or
/// SIGTERM, then lets connections in flight finish and returns; SIGHUP changes nothing
/// (sock::server logs it). Throws sock::error when it cannot listen.
void run_server(const server_config& config, std::vector<sock::socket> inherited = {});

/// Sends back everything the connection receives until EOF, an error or the idle timeout.
/// config must outlive the task.
sock::task<> serve_connection(sock::async_socket conn, const server_config& config);

/// serve_connection over TLS with ctx (which must outlive the handshake).
sock::task<> serve_tls_connection(sock::async_socket conn, const sock::ssl::context& ctx,
                                  const server_config& config);

}  // namespace echo
