#pragma once

#include <sock/address.hpp>
#include <sock/async_socket.hpp>
#include <sock/export.hpp>
#include <sock/network.hpp>
#include <sock/task.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
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
    /// Sockets already listening, served besides `listen`: socket activation's
    /// (sock::listen_fds()), or any a supervisor holds across restarts. Each must be of `type`
    /// and, for streams, listening; else the constructor throws std::invalid_argument naming
    /// it. Each is shared by every loop, made non-blocking (and given tcp_nodelay if set), its
    /// other options left as they are; the stop closes this copy only, so clients go on
    /// queueing on the holder's.
    std::vector<socket> inherited{};
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
    /// "Lame duck": once a graceful stop begins, the server goes on accepting and serving for
    /// stop_delay while stopping() is already true, so that a front door polling a health
    /// check built on it (/healthz answering 503) takes the instance out before its listeners
    /// close; then they close and the grace period runs as without it. Make it longer than
    /// the front door's check interval times its failures to mark a server down. A second
    /// stop() or signal skips what is left of it.
    std::chrono::nanoseconds stop_delay{0};
    int backlog = 4096;
    /// Joins a port other processes already listen on with SO_REUSEPORT, sharing its
    /// connections, for a restart without downtime (start the new server, stop the old one).
    /// Off: a port already in use is an error ("bind 127.0.0.1:8001: Address already in
    /// use"). The server's own loops always share their port, so a later server that sets
    /// this can join this one even when this one did not.
    bool reuse_port = false;
    /// TCP_DEFER_ACCEPT: the kernel hands over a connection once its first data is there, so
    /// the handler's first recv needs no wait (and no epoll registration). Turned off when a
    /// graceful stop begins, so that with a stop_delay no connection is still held back when
    /// the listeners close (it would be reset); without one, a connection whose first bytes
    /// are still on their way then is (a client that speaks first retries; a front door may
    /// count it as failed: give those a stop_delay, or set this false).
    bool defer_accept = true;
    /// TCP_NODELAY on every TCP connection, for protocols that may send twice before the peer
    /// answers (TLS records, ping-pong): set once on the listeners, bound or inherited, whose
    /// connections inherit it (Linux), so it costs no call per connection.
    bool tcp_nodelay = false;
    /// SIGINT and SIGTERM stop the server gracefully (a second one cancels what is left), and
    /// SIGHUP calls on_hangup. From construction to destruction a process-wide handler
    /// (sigaction) catches them, on whatever thread the kernel picks: no thread's signal mask
    /// changes, and threads started before the server need nothing. The previous handlers
    /// come back when the last such server is destroyed. A program that blocks these signals
    /// in every thread (to sigwait them itself) sets this false and calls stop().
    bool handle_signals = true;
    /// With handle_signals: what SIGHUP does. Empty: it is logged and otherwise ignored (never
    /// terminates the server). Runs on the first loop's thread.
    std::function<void()> on_hangup{};
    /// Tells the service manager how the server is (sd_notify(3), sock/systemd.hpp): READY=1
    /// once run() serves, STATUS= with the counts when they change (looked at once a second),
    /// STOPPING=1 when a graceful stop begins, WATCHDOG=1 at half $WATCHDOG_USEC while every
    /// loop turns. Failures are logged; serving goes on. On when $NOTIFY_SOCKET is set.
    bool notify = std::getenv("NOTIFY_SOCKET") != nullptr;
    /// PROXY protocol (v1 or v2, HAProxy's specification): every connection must begin with
    /// a header from a front door in proxy_from, as behind nginx `proxy_protocol` or HAProxy
    /// `send-proxy-v2`. The server takes it off before the handler runs (what follows stays
    /// for the handler) and records the client on the socket: async_socket::getpeername
    /// returns it. A LOCAL header (a health check) leaves the front door as the peer. Any
    /// other peer, a malformed header, or none within proxy_timeout: closed without a reply,
    /// counted in proxy_rejected(), logged at most once a second.
    bool proxy_protocol = false;
    /// The front doors trusted to send PROXY headers; by default loopback and Unix peers.
    std::vector<network> proxy_from = loopback_networks();
    /// How long a connection may take to send its whole header, however it arrives.
    std::chrono::nanoseconds proxy_timeout = std::chrono::seconds(5);
    /// Where the server's own one-line messages go (accept failures, stops); stderr if empty.
    std::function<void(std::string_view)> log{};
};

class metrics_text;

/// What a server has done since it started, summed over its loops when asked: each loop
/// counts its own (loop_counter), so counting takes no lock and shares no cache line.
struct server_stats {
    std::uint64_t accepted = 0;  ///< connections accepted
    std::uint64_t active = 0;    ///< connections being served now
    std::uint64_t paused_at_limit = 0;        ///< accepting paused at max_connections
    std::uint64_t paused_for_descriptors = 0; ///< accepting paused for 100 ms: no descriptors
    std::uint64_t accept_errors = 0;   ///< accept4 failures (running out of descriptors too)
    std::uint64_t handler_errors = 0;  ///< handlers that could not start or threw
    std::uint64_t proxy_rejected = 0;  ///< closed for their PROXY header (see proxy_protocol)
};

/// A multi-loop server: N event loops on N threads, each with its own SO_REUSEPORT listener
/// (Unix and inherited sockets: one listener, shared), running a coroutine per connection.
class server {
public:
    /// Binds and listens at once, so errors (port in use...) surface here as sock::error.
    server(server_config config, connection_handler handler);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    /// The addresses actually bound, in config order (ports filled in).
    const std::vector<address>& addresses() const noexcept { return bound_; }
    /// Runs every loop (the calling thread runs the first) until stopped and drained. If a
    /// loop fails (its event_loop cannot be created, epoll fails...), the others are stopped
    /// at once (their connections destroyed) and joined, and the first failure is rethrown.
    /// When run returns or throws, no connection's coroutine frame or socket is left.
    void run();
    /// Starts a graceful stop; safe from any thread, before or during run(). After
    /// config.stop_delay (a second call skips it), connections already queued are still
    /// taken, then the listeners close (later clients are refused).
    void stop();

    /// Connections being served now.
    std::size_t active() const noexcept { return active_.load(std::memory_order_relaxed); }
    /// Connections accepted since the start.
    std::size_t accepted() const noexcept;
    /// Connections closed for their PROXY header (untrusted peer, malformed, too slow), summed
    /// over the loops' own counters.
    std::size_t proxy_rejected() const noexcept;
    /// The counters of every loop, summed; safe from any thread, at any time.
    server_stats stats() const noexcept;
    /// Appends stats() as Prometheus families (sock_connections_accepted_total...) to out.
    void write_metrics(metrics_text& out) const;
    /// True once a graceful stop has begun (stop(), SIGINT, SIGTERM): what a health check says.
    bool stopping() const noexcept { return stop_requested_.load(); }
    /// Event loops (threads) it runs.
    std::size_t loops() const noexcept { return workers_.size(); }
    /// Runs a task beside the connections, on the first loop (a metrics endpoint, a periodic
    /// job), so that it needs no thread of its own: make() is called on that loop's thread
    /// when run() starts. The task is no connection (not counted, not limited); it ends with
    /// its loop, once every loop's connections have drained after a stop (or at once if the
    /// server fails), destroyed where it waits; only a grace period that runs out with that
    /// loop's connections still open cancels it with them. Call before run().
    void add_service(std::function<task<>()> make);
    /// On a thread running one of a server's loops: that loop's number, from 0 to loops() - 1,
    /// to index per-loop state (per_loop<T>) from a handler. Elsewhere: no_loop.
    static std::size_t current_loop() noexcept;
    static constexpr std::size_t no_loop = static_cast<std::size_t>(-1);

private:
    struct worker;
    friend struct worker;
    void log(std::string_view line) const;
    void connection_ended();
    std::string bound_name(int fd) const;
    void abort_all() noexcept;
    void catch_signals();
    void release_signals() noexcept;
    void share(socket listener, sock::family family);
    void tell(const std::string& state) noexcept;
    std::string status() const;

    server_config config_;
    connection_handler handler_;
    std::vector<std::function<task<>()>> services_;
    std::vector<address> bound_;
    std::vector<socket> shared_;  // Unix and inherited listeners, one for all loops
    std::vector<std::unique_ptr<worker>> workers_;
    std::atomic<std::size_t> active_{0};
    std::atomic<bool> stop_requested_{false};
    // Set before the posts that carry them, so that a loop which starts after a post was
    // dropped (its thread not yet running) still sees how far the stop has gone.
    std::atomic<bool> stop_now_{false};  // a second stop(): no more stop_delay
    std::atomic<bool> hurried_{false};   // a second signal: cancel open connections
    std::atomic<std::size_t> stopped_listening_{0};  // loops that have closed their listeners
    std::atomic<std::size_t> loops_finished_{0};  // loops other than the first that have ended
    std::atomic<bool> running_{false};
    std::atomic<bool> aborted_{false};  // a loop failed: the others stop at once
    std::optional<std::chrono::microseconds> watchdog_;  // $WATCHDOG_USEC, when notifying
    std::atomic<bool> notify_failing_{false};  // logged once until a notification goes through
    int signal_read_ = -1;   // the signal handler writes each signal's number here
    int signal_write_ = -1;
};

}  // namespace sock
