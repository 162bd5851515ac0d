#pragma once

// greet-server's work: the greeting protocol on the sock::server engine.

#include "greet/tls.hpp"

#include <sock/async_socket.hpp>
#include <sock/network.hpp>
#include <sock/socket.hpp>
#include <sock/task.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace greet {

struct loop_counts;

struct server_config {
    std::string host{"localhost"};
    std::uint16_t port = 8001;
    int backlog = 4096;
    /// How long a client has to send its message.
    std::chrono::nanoseconds timeout = std::chrono::seconds(5);
    /// Non-empty: serve on this Unix stream socket instead of TCP.
    std::string unix_path;
    /// Serve UDP datagrams instead of TCP connections.
    bool udp = false;
    /// Event loops (threads); 0 = one per core.
    unsigned threads = 0;
    /// Connections served at once; 0 = as many as the descriptor limit allows.
    std::size_t max_connections = 0;
    /// No line per served client (time outs and failures are still logged).
    bool quiet = false;
    /// Share the port with other processes that ask for it too (SO_REUSEPORT), for a restart
    /// without downtime; without it a port in use is an error.
    bool reuse_port = false;
    /// Non-empty: "HOST:PORT" where /metrics and /healthz are served over HTTP.
    std::string metrics;
    /// After SIGINT or SIGTERM, how long it goes on serving with /healthz at 503 before the
    /// listener closes (sock::server_config::stop_delay): a front door's health check takes it
    /// out meanwhile.
    std::chrono::nanoseconds stop_delay{0};
    /// Every connection begins with a PROXY protocol header (v1 or v2) from a front door in
    /// proxy_from (HAProxy, nginx); the logs show the client it names.
    bool proxy_protocol = false;
    /// The front doors trusted to send it; loopback and Unix peers unless told otherwise.
    std::vector<sock::network> proxy_from = sock::loopback_networks();
    /// With a certificate: TLS on every connection (after the PROXY header, if any). The
    /// handshake and the message share one deadline, `timeout` after the accept.
    tls::server_files tls;
};

/// Binds as configured (or, given `inherited` listening sockets, serves those instead: socket
/// activation), prints "listening on ADDRESS" to stdout for each (with metrics, then "metrics
/// on http://ADDRESS/metrics"), and serves until SIGINT or
/// SIGTERM, then lets connections in flight finish and returns. SIGHUP changes nothing
/// (sock::server logs "received SIGHUP: nothing to reload, ignored"), except with TLS: then
/// it loads the certificate files again for new connections (connections already made keep
/// theirs), and a load that fails keeps the current ones; either way one line says so. Under a service manager
/// it notifies it (READY=1...: sock::server_config::notify). Throws sock::error when it
/// cannot listen, std::invalid_argument for an inherited socket of the wrong kind; failures
/// of one client are logged to stderr and never end the server.
void run_server(const server_config& config, std::vector<sock::socket> inherited = {});

/// Serves one connection as the seed does: the message is what the first read returns (at
/// most max_message bytes); the reply follows, then the connection closes with a clean end
/// of stream even if the client sent more (drained for at most a second). A client that
/// said nothing in time is logged as "time out" and closed without a reply. config must
/// outlive the task. counts, if not null, are the calling loop's, and count how it ended.
sock::task<> serve_connection(sock::async_socket conn, const server_config& config,
                              loop_counts* counts = nullptr);

/// serve_connection over TLS with ctx (which must outlive the handshake): a handshake that
/// fails is logged as "ADDRESS: handshake: REASON" and counted by reason.
sock::task<> serve_tls_connection(sock::async_socket conn, const sock::ssl::context& ctx,
                                  const server_config& config, loop_counts* counts = nullptr);

}  // namespace greet
