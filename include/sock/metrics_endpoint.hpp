#pragma once

// The HTTP side of metrics: GET /metrics (Prometheus' text format) and GET /healthz, on a
// listener of its own that outlives the graceful stop of the server it reports on. The
// request reader is pure (bytes in, verdict out) and strict: one HTTP/1.0 or 1.1 request head
// within a size limit and a deadline, answered once, then Connection: close.

#include <sock/address.hpp>
#include <sock/async_socket.hpp>
#include <sock/export.hpp>
#include <sock/server.hpp>
#include <sock/task.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

namespace sock SOCK_API {

/// The most a request head may take, request line and fields, with its blank line.
inline constexpr std::size_t http_head_limit = 8 * 1024;

/// What parse_http_request made of the bytes received so far.
struct http_request {
    /// 0: the head is not complete yet, read more. 200: method and path are set. Otherwise
    /// the status to answer with: 400 (malformed), 431 (over the limit), 505 (not HTTP/1.x).
    int status = 0;
    std::string_view method;  ///< a token: GET, HEAD, POST...
    std::string_view path;    ///< the origin-form target without its query ("/metrics")
};

/// Reads one request head (RFC 9112): "METHOD /path HTTP/1.x" CRLF, fields "name: value" CRLF,
/// then CRLF. Strict: bare LF or CR, control characters, folded or malformed fields, a target
/// not starting with "/", a 1.1 request without exactly one Host are 400. A body is never
/// read (the connection closes after the response). The views point into received.
http_request parse_http_request(std::string_view received, std::size_t limit = http_head_limit);

/// A whole HTTP/1.1 response with Content-Length and Connection: close; the body is left out
/// for HEAD (head_only). 405 gets Allow: GET, HEAD.
std::string http_response(int status, std::string_view content_type, std::string_view body,
                          bool head_only = false);

/// What the endpoint serves.
struct metrics_routes {
    /// GET /metrics: the exposition (metrics_text::str()); runs on the endpoint's thread.
    std::function<std::string()> metrics;
    /// GET /healthz: 200 "ok" while true, 503 "stopping" once false (server::stopping()).
    std::function<bool()> healthy;
};

/// The response to a request parse_http_request completed: its error status, 405 for methods
/// other than GET and HEAD, 404 for paths other than /metrics and /healthz.
std::string answer_http(const http_request& r, const metrics_routes& routes);

/// Serves one HTTP connection: reads a head within `timeout` in all (408 after it), answers,
/// and closes with a FIN after the response.
task<> serve_http(async_socket conn, const metrics_routes& routes, std::chrono::nanoseconds timeout);

/// Where and how an endpoint listens.
struct metrics_endpoint_config {
    sock::address listen{};
    metrics_routes routes{};
    /// How long a client has to send its request head.
    std::chrono::nanoseconds timeout = std::chrono::seconds(5);
    /// Scrapes served at once; more wait in the listen queue.
    std::size_t max_connections = 64;
    /// Where its server's one-line messages go; stderr if empty.
    std::function<void(std::string_view)> log{};
};

/// /metrics and /healthz, served either on the first loop of the server it reports on or on
/// a sock::server of its own (one loop, one thread). Either way it keeps answering (/healthz
/// 503) all through that server's graceful stop.
class metrics_endpoint {
public:
    /// Binds and listens at once (errors are sock::error, as server's), then serves on a new
    /// thread until destroyed.
    explicit metrics_endpoint(metrics_endpoint_config config);
    /// Binds and listens at once, and serves on host's first loop once host.run() starts
    /// (server::add_service), with no thread of its own: a process with one loop stays
    /// single-threaded, so its system calls skip glibc's multi-threaded wrappers. Scrapes run
    /// between that loop's connections; the endpoint closes as host.run() returns. Call
    /// before host.run(); the endpoint must outlive it.
    metrics_endpoint(metrics_endpoint_config config, server& host);
    /// Stops: scrapes in flight get a second, then the thread (if any) is joined.
    ~metrics_endpoint();
    metrics_endpoint(const metrics_endpoint&) = delete;
    metrics_endpoint& operator=(const metrics_endpoint&) = delete;

    /// The address actually bound (port 0 filled in).
    const sock::address& address() const noexcept { return address_; }

private:
    task<> serve_on_host(socket listener);
    void log(const std::string& line) const;

    metrics_routes routes_;
    std::chrono::nanoseconds timeout_;
    std::size_t max_connections_;
    std::function<void(std::string_view)> log_;
    sock::address address_;
    std::unique_ptr<server> own_;  // without a host: the endpoint's own server and thread
    std::thread thread_;
};

}  // namespace sock
