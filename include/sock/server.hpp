#pragma once

#include <sock/address.hpp>
#include <sock/async_socket.hpp>
#include <sock/export.hpp>
#include <sock/task.hpp>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sock SOCK_API {

/// What a server runs for each connection (stream) or once per loop on its socket (dgram).
using connection_handler = std::function<task<>(async_socket)>;

/// How a server listens and behaves; the defaults suit a protocol where the client speaks first.
struct server_config {
    /// Where to listen: host and port (port 0 picks one, shared by every loop) or Unix paths.
    std::vector<address> listen{};
    /// Event loops, each on its own thread; 0 means one per core.
    unsigned threads = 0;
    /// stream: the handler gets each accepted connection. dgram: it gets each loop's bound
    /// socket once, and serves datagrams until it sees operation_canceled.
    sock::kind type = sock::kind::stream;
    /// Connections served at once, over all loops; 0 means no limit. At the limit the loops
    /// stop accepting: new clients wait in the kernel's listen queue (then in SYN retries),
    /// connections already open are unaffected, and accepting resumes as soon as one ends.
    std::size_t max_connections = 0;
    /// Graceful stop: how long in-flight connections may go on after listening stops; then
    /// their pending calls fail with operation_canceled.
    std::chrono::nanoseconds grace = std::chrono::seconds(5);
    int backlog = 4096;
    /// Lets other processes bind the same port and share its connections (SO_REUSEPORT across
    /// processes), for a restart without downtime. Off: a port already in use is an error
    /// ("bind 127.0.0.1:8001: Address already in use"); the server's own loops always share.
    bool reuse_port = false;
    /// TCP_DEFER_ACCEPT: the kernel hands over a connection once its first data is there, so
    /// the handler's first recv needs no wait (and no epoll registration).
    bool defer_accept = true;
    /// SIGINT and SIGTERM stop the server gracefully (a second one cancels what is left); they
    /// are blocked from construction until run() returns and read through a signalfd.
    bool handle_signals = true;
    /// With handle_signals: what SIGHUP does. Empty: it is logged and otherwise ignored (never
    /// terminates the server). Runs on the first loop's thread.
    std::function<void()> on_hangup{};
    /// Where the server's own one-line messages go (accept failures, stops); stderr if empty.
    std::function<void(std::string_view)> log{};
};

/// A multi-loop server: N event loops on N threads, each with its own SO_REUSEPORT listener
/// (Unix sockets: one listener, shared), running a coroutine per connection.
class server {
public:
    /// Binds and listens at once, so errors (port in use...) surface here as sock::error.
    server(server_config config, connection_handler handler);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    /// The addresses actually bound, in config order (ports filled in).
    const std::vector<address>& addresses() const noexcept { return bound_; }
    /// Runs every loop (the calling thread runs the first) until stopped and drained.
    void run();
    /// Starts a graceful stop; safe from any thread, before or during run(). Connections
    /// already queued are still taken, then the listeners close (later clients are refused).
    void stop();

    /// Connections being served now.
    std::size_t active() const noexcept { return active_.load(std::memory_order_relaxed); }
    /// Connections accepted since the start.
    std::size_t accepted() const noexcept { return accepted_.load(std::memory_order_relaxed); }

private:
    struct worker;
    friend struct worker;
    void log(std::string_view line) const;
    void connection_ended();
    std::string bound_name(int fd) const;
    void block_signals();
    void restore_signals() noexcept;

    server_config config_;
    connection_handler handler_;
    std::vector<address> bound_;
    std::vector<socket> shared_;  // Unix listeners, one for all loops
    std::vector<std::unique_ptr<worker>> workers_;
    std::atomic<std::size_t> active_{0};
    std::atomic<std::size_t> accepted_{0};
    std::atomic<bool> stop_requested_{false};
    std::atomic<std::size_t> stopped_listening_{0};  // loops that have closed their listeners
    std::atomic<bool> running_{false};
    int signal_fd_ = -1;
    ::sigset_t old_mask_{};
};

}  // namespace sock
