#include <sock/server.hpp>

#include <sock/event_loop.hpp>
#include <sock/systemd.hpp>
#include <sock/metrics.hpp>

#include "proxy_accept.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <algorithm>
#include <array>
#include <mutex>
#include <string>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace sock SOCK_API {

namespace {

using namespace std::chrono_literals;

// How long accepting pauses when descriptors run out, and how often that is logged.
constexpr auto fd_backoff = 100ms;
constexpr auto log_interval = 1s;
// After the grace period, cancelled handlers get this long to finish before the loop ends.
constexpr auto cancel_grace = 1s;
// Accepts per wakeup of one listener before other events get their turn.
constexpr int accept_batch = 64;
// How often the service manager's STATUS= line is brought up to date (when it changed).
constexpr auto status_interval = 1s;

// The loop this thread runs for a server (server::current_loop).
thread_local std::size_t this_loop = server::no_loop;

bool out_of_descriptors(int e) noexcept {
    return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

// -- signals ----------------------------------------------------------------------------------
// One process-wide handler for every server that handles signals: it writes the signal's
// number to each registered server's pipe. A handler runs on whatever thread the kernel
// picks, so no thread's mask needs changing, whoever started threads before or after.

constexpr std::array<int, 3> caught_signals{SIGINT, SIGTERM, SIGHUP};
constexpr std::size_t max_signal_servers = 64;

// Write ends plus one; 0 is a free slot (zero-initialised before any constructor runs).
std::array<std::atomic<int>, max_signal_servers> signal_pipes{};
// Handlers running now: unregistering waits for them, so none writes to a closed (and
// perhaps reused) descriptor.
std::atomic<int> handlers_running{0};
std::mutex signal_mutex;
std::size_t signal_users = 0;                    // guarded by signal_mutex
std::array<struct ::sigaction, 3> saved_actions{};  // idem

// A thread that starts with the given signal mask (pthread_attr_setsigmask_np), so that its
// creator's mask never changes: blocking the stop signals in the creator around
// pthread_create, as before, lost a SIGTERM pending across it under ThreadSanitizer.
class loop_thread {
public:
    loop_thread(std::function<void()> body, const ::sigset_t& mask) : body_(std::move(body)) {
        ::pthread_attr_t attr;
        int rc = ::pthread_attr_init(&attr);
        if (rc != 0) throw std::system_error(rc, std::system_category(), "pthread_attr_init");
        rc = ::pthread_attr_setsigmask_np(&attr, &mask);
        if (rc == 0) rc = ::pthread_create(&id_, &attr, &start, this);
        ::pthread_attr_destroy(&attr);
        if (rc != 0) throw std::system_error(rc, std::system_category(), "pthread_create");
    }
    loop_thread(const loop_thread&) = delete;
    loop_thread& operator=(const loop_thread&) = delete;
    ~loop_thread() { ::pthread_join(id_, nullptr); }

private:
    static void* start(void* self) {
        static_cast<loop_thread*>(self)->body_();
        return nullptr;
    }

    std::function<void()> body_;
    ::pthread_t id_{};
};

extern "C" void on_stop_signal(int signo) {
    const int saved_errno = errno;
    handlers_running.fetch_add(1);
    const auto byte = static_cast<unsigned char>(signo);
    for (auto& slot : signal_pipes) {
        const int fd = slot.load() - 1;
        if (fd >= 0) [[maybe_unused]] auto n = ::write(fd, &byte, 1);
    }
    handlers_running.fetch_sub(1);
    errno = saved_errno;
}

void register_signal_pipe(int fd) {
    std::lock_guard lock(signal_mutex);
    auto free = std::find_if(signal_pipes.begin(), signal_pipes.end(),
                             [](const auto& slot) { return slot.load() == 0; });
    if (free == signal_pipes.end())
        throw std::runtime_error("server: more than 64 servers handle signals at once");
    if (signal_users == 0) {
        struct ::sigaction action {};
        action.sa_handler = &on_stop_signal;
        sigemptyset(&action.sa_mask);
        action.sa_flags = SA_RESTART;
        for (std::size_t i = 0; i < caught_signals.size(); ++i)
            ::sigaction(caught_signals[i], &action, &saved_actions[i]);
    }
    ++signal_users;
    free->store(fd + 1);
}

void unregister_signal_pipe(int fd) noexcept {
    std::lock_guard lock(signal_mutex);
    for (auto& slot : signal_pipes) {
        int expected = fd + 1;
        if (slot.compare_exchange_strong(expected, 0)) break;
    }
    if (--signal_users == 0) {
        for (std::size_t i = 0; i < caught_signals.size(); ++i)
            ::sigaction(caught_signals[i], &saved_actions[i], nullptr);
    }
    while (handlers_running.load() != 0) ::sched_yield();
}

const char* signal_name(int signo) noexcept {
    switch (signo) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGHUP: return "SIGHUP";
    default: return "a signal";
    }
}

}  // namespace

// One event loop, its thread's share of the listeners, and its connections.
struct server::worker {
    struct listener final : io_handler {
        worker* w = nullptr;
        int fd = -1;
        sock::family family = sock::family::inet;
        bool shared = false;  // one socket in every loop (Unix paths): EPOLLEXCLUSIVE
        bool watching = false;
        void on_io(std::uint32_t) override { w->accept_from(*this); }
    };
    struct signal_handler final : io_handler {
        worker* w = nullptr;
        int fd = -1;
        void on_io(std::uint32_t) override { w->on_signal(); }
    };
    struct worker_timer : timer {
        worker* w = nullptr;
    };

    // Written by this loop's thread only, read by stats() from any: see loop_counter.
    struct counters {
        loop_counter accepted, paused_at_limit, paused_for_descriptors, accept_errors, handler_errors,
            proxy_rejected;
    };

    server& srv;
    const std::size_t index;
    counters counted;
    std::vector<socket> own;  // this loop's SO_REUSEPORT sockets
    std::vector<listener> listeners;
    std::mutex loop_mutex;
    event_loop* loop = nullptr;  // set while run() runs; guarded by loop_mutex for posts
    std::atomic<bool> paused_by_limit{false};
    std::size_t live = 0;
    bool draining = false;
    bool lame = false;  // in stop_delay: stopping, yet still accepting and serving
    bool hurried = false;  // hurry() ran: a late post of it changes nothing
    bool backing_off = false;
    bool first_finished = false;  // the first loop is done, waiting for the others (finish)
    worker_timer backoff, lame_duck, grace, last_call;
    event_loop::clock::time_point last_log{};
    // The service manager's notifications, from the first loop only: the STATUS= line last
    // sent, and the watchdog's round, which every other loop echoes into its heartbeat.
    worker_timer status, watchdog;
    std::string last_status;
    std::uint64_t round = 0;
    std::atomic<std::uint64_t> heartbeat{0};
    signal_handler signals;
    task_set connections;  // live handlers, destroyed if they outlast the stop
    task_set services;     // add_service's tasks (first loop only), destroyed with the loop

    worker(server& s, std::size_t i) : srv(s), index(i) {}

    // Runs fn on this worker's loop, if it is running.
    void post(std::function<void()> fn) {
        std::lock_guard lock(loop_mutex);
        if (loop != nullptr) loop->post(std::move(fn));
    }

    void watch(bool on) {
        for (auto& l : listeners) {
            if (l.watching == on) continue;
            if (on) loop->add(l.fd, EPOLLIN | (l.shared ? EPOLLEXCLUSIVE : 0u), l);
            else loop->remove(l.fd);
            l.watching = on;
        }
    }

    void resume_accepting() {
        if (!draining && !backing_off && !paused_by_limit.load()) watch(true);
    }

    void log_limited(const std::string& line) {
        const auto now = loop->now();
        if (now - last_log < log_interval) return;
        last_log = now;
        srv.log(line + " (repeats within 1 s not logged)");
    }

    // Returns true when it stopped at the batch size, with more connections perhaps queued.
    bool accept_from(listener& l) {
        const std::size_t max = srv.config_.max_connections;
        for (int i = 0; i < accept_batch; ++i) {
            // A slot is reserved before accept4 and given back through connection_ended,
            // like a connection that ends: a loop that saw the count the reservation made
            // transiently full may have paused, and must be woken.
            if (max != 0 && srv.active_.fetch_add(1) >= max) {
                srv.connection_ended();
                pause_for_limit();
                return false;
            }
            // Behind a front door the peer decides whether the connection is served: taken
            // from accept itself, which has it even if the peer has already reset.
            const bool proxied = srv.config_.proxy_protocol;
            ::sockaddr_storage peer;  // written by accept4 when read: not cleared for nothing
            ::socklen_t peer_len = sizeof peer;
            const int fd = ::accept4(l.fd, proxied ? reinterpret_cast<::sockaddr*>(&peer) : nullptr,
                                     proxied ? &peer_len : nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                const int e = errno;
                if (max != 0) srv.connection_ended();
                if (e == EINTR || e == ECONNABORTED) continue;
                if (e == EAGAIN || e == EWOULDBLOCK) return false;
                counted.accept_errors.add();
                if (out_of_descriptors(e)) {
                    counted.paused_for_descriptors.add();
                    // Level-triggered accept would spin: stop watching, retry after a pause.
                    log_limited("accept " + srv.bound_name(l.fd) + ": " +
                                std::error_code(e, std::system_category()).message() +
                                "; pausing accepts for 100 ms");
                    backing_off = true;
                    watch(false);
                    loop->start(backoff, fd_backoff);
                    return false;
                }
                log_limited("accept " + srv.bound_name(l.fd) + ": " +
                            std::error_code(e, std::system_category()).message());
                return false;
            }
            if (max == 0) srv.active_.fetch_add(1, std::memory_order_relaxed);
            counted.accepted.add();
            async_socket conn(socket::adopt(fd, l.family, sock::kind::stream, 0, true), *loop);
            if (!proxied) {
                start(std::move(conn));
                continue;
            }
            launch([&] {
                return serve_proxied(
                    std::move(conn),
                    address::from_native(reinterpret_cast<const ::sockaddr*>(&peer), peer_len));
            });
        }
        return true;
    }

    // The handler, after the PROXY header when there must be one: the handler never sees it.
    task<> serve_proxied(async_socket conn, address peer) {
        std::string why;
        if (!contains(srv.config_.proxy_from, peer))
            why = "not a trusted front door (proxy_from)";
        else
            why = co_await detail::take_proxy_header(conn, srv.config_.proxy_timeout);
        if (why.empty()) {
            co_await srv.handler_(std::move(conn));
            co_return;
        }
        counted.proxy_rejected.add();
        const std::string who = peer.is_unix() ? "a unix peer" : peer.empty() ? "a peer" : peer.to_string();
        log_limited("PROXY header from " + who + ": " + why + "; closed");
    }  // closing the connection without a reply

    void start(async_socket conn) {
        launch([&] { return srv.handler_(std::move(conn)); });
    }

    // Spawns the connection's task, which make() creates.
    template <class Make>
    void launch(Make make) {
        task<> t;
        try {
            t = make();
        } catch (const std::exception& e) {
            // No frame (out of memory, or the handler threw before its first suspension
            // point): this connection is dropped, the server goes on.
            srv.log(std::string("connection handler could not start: ") + e.what());
            counted.handler_errors.add();
            srv.connection_ended();
            return;
        }
        ++live;
        connections.spawn(std::move(t), &worker::on_done, this);
    }

    // Destroys the handlers still suspended: their destructors run and their sockets close.
    void destroy_connections() noexcept {
        const std::size_t n = connections.destroy_all();
        live -= n;
        for (std::size_t i = 0; i < n; ++i) srv.connection_ended();
    }

    // A loop failed: stop this one now, without a grace period.
    void abort() noexcept {
        draining = true;
        watch_nothrow(false);
        connections.cancel_all();
        loop->cancel_all();
        destroy_connections();
        loop->stop();
    }

    void watch_nothrow(bool on) noexcept {
        try {
            watch(on);
        } catch (...) {
        }
    }

    static void on_done(void* ctx, std::exception_ptr ex) noexcept {
        auto& w = *static_cast<worker*>(ctx);
        --w.live;
        if (ex) {
            w.counted.handler_errors.add();
            w.log_failure("connection handler", ex);
        }
        w.srv.connection_ended();
        if (w.draining && w.live == 0) w.finish();
    }

    void pause_for_limit() {
        counted.paused_at_limit.add();
        paused_by_limit.store(true);
        watch(false);
        // A connection may have ended between the check and the flag: look again.
        if (srv.active_.load() < srv.config_.max_connections && paused_by_limit.exchange(false))
            resume_accepting();
    }

    // TCP_DEFER_ACCEPT keeps a connection out of the accept queue until its first bytes come,
    // and one still waiting when the listener closes is reset, though its client (a front
    // door) counts it as made and cannot send it elsewhere. From the start of a stop, new
    // connections go straight to the queue, which the stop drains before it closes; those
    // deferred before then join it as their bytes come, during stop_delay.
    void stop_deferring() noexcept {
        if (!srv.config_.defer_accept) return;
        const int off = 0;
        for (auto& l : listeners)
            if (!l.shared && (l.family == sock::family::inet || l.family == sock::family::inet6))
                ::setsockopt(l.fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &off, sizeof off);
    }

    // Unless `now` (a second stop, hurry, the delay's end), serves on for stop_delay first.
    void begin_stop(bool now) {
        if (draining) return;
        if (!lame && srv.config_.type == sock::kind::stream) stop_deferring();
        if (!now && srv.config_.stop_delay > std::chrono::nanoseconds::zero()) {
            if (lame) return;
            lame = true;
            lame_duck.fire = [](timer& t) { static_cast<worker_timer&>(t).w->begin_stop(true); };
            loop->start(lame_duck, srv.config_.stop_delay);
            return;
        }
        loop->cancel(lame_duck);
        // Connections the kernel completed before the stop are clients in flight too: take
        // those queued (within the limits), then close the listeners, so that later clients
        // are refused instead of waiting in a queue nobody reads.
        if (srv.config_.type == sock::kind::stream) {
            const int batches = srv.config_.backlog / accept_batch + 1;
            for (auto& l : listeners) {
                for (int i = 0; i < batches && accept_from(l); ++i) {
                }
            }
        }
        draining = true;
        watch(false);
        close_listeners();
        // Nothing is in flight: each loop's datagram task is told to end. (Not every socket of
        // the loop, which would take the services' with them.)
        if (srv.config_.type == sock::kind::dgram) connections.cancel_all();
        if (live == 0) {
            finish();
            return;
        }
        grace.fire = [](timer& t) { static_cast<worker_timer&>(t).w->hurry(); };
        loop->start(grace, srv.config_.grace);
    }

    // This loop has no connection left after a stop: it ends, except that the first loop,
    // when it runs services (a /healthz that says 503 until the exit), waits for the others.
    void finish() {
        auto& first = *srv.workers_.front();
        if (srv.services_.empty()) {
            loop->stop();
        } else if (this != &first) {
            loop->stop();
            srv.loops_finished_.fetch_add(1);
            first.post([f = &first] { f->finish_first(); });
        } else {
            first_finished = true;
            finish_first();
        }
    }

    void finish_first() {
        if (first_finished && srv.loops_finished_.load() + 1 == srv.workers_.size()) loop->stop();
    }

    // After watch(false). A shared (Unix) listener closes once no loop watches it any more.
    void close_listeners() {
        for (auto& l : listeners)
            if (!l.shared) l.fd = -1;
        own.clear();
        if (srv.stopped_listening_.fetch_add(1) + 1 == srv.workers_.size()) srv.shared_.clear();
    }

    // The grace period is over: cancel what still waits, and end the loop soon regardless.
    void hurry() {
        if (std::exchange(hurried, true)) return;
        if (lame && !draining) begin_stop(true);  // no more stop_delay
        if (live == 0) return;
        loop->cancel(grace);
        srv.log(std::to_string(live) + " connection(s) still open after the grace period; cancelling");
        // Each handler's task is cancelled (whatever library awaitable it waits in wakes with
        // operation_canceled), then every socket of the loop, so that later calls fail too.
        connections.cancel_all();
        loop->cancel_all();
        if (live == 0) return;
        last_call.fire = [](timer& t) {
            auto& w = *static_cast<worker_timer&>(t).w;
            w.srv.log(std::to_string(w.live) +
                      " connection(s) ignored cancellation; destroying them");
            w.destroy_connections();
            w.finish();
        };
        loop->start(last_call, cancel_grace);
    }

    void on_signal() {
        unsigned char signo = 0;
        while (::read(signals.fd, &signo, 1) == 1) {
            if (signo == SIGHUP) {
                if (!srv.config_.on_hangup) {
                    srv.log("received SIGHUP: nothing to reload, ignored");
                    continue;
                }
                try {
                    srv.config_.on_hangup();
                } catch (const std::exception& e) {
                    srv.log(std::string("SIGHUP: ") + e.what());
                }
                continue;
            }
            const bool again = srv.stop_requested_.load();
            srv.log(std::string("received ") + signal_name(signo) +
                    (again ? ": cancelling open connections"
                     : srv.config_.stop_delay > std::chrono::nanoseconds::zero()
                         ? ": stopping gracefully, after serving on for the stop delay"
                         : ": stopping gracefully"));
            if (again) {
                srv.hurried_.store(true);
                for (auto& w : srv.workers_) w->post([wp = w.get()] { wp->hurry(); });
            } else {
                srv.stop();
            }
        }
    }

    void start_services() {
        for (const auto& make : srv.services_) {
            try {
                services.spawn(make(), &worker::on_service_done, this);
            } catch (const std::exception& e) {
                srv.log(std::string("service could not start: ") + e.what());
            }
        }
    }

    static void on_service_done(void* ctx, std::exception_ptr ex) noexcept {
        if (ex) static_cast<worker*>(ctx)->log_failure("service", ex);
    }

    // One line for what a task threw: "connection handler failed: why".
    void log_failure(const char* what, std::exception_ptr ex) noexcept {
        try {
            try {
                std::rethrow_exception(ex);
            } catch (const std::exception& e) {
                srv.log(std::string(what) + " failed: " + e.what());
            } catch (...) {
                srv.log(std::string(what) + " failed with a non-standard exception");
            }
        } catch (...) {  // no memory for the line: the count above still says it
        }
    }

    // READY=1 and the timers that keep STATUS= and the watchdog going (first loop, notify on).
    void start_notifying() {
        if (srv.stop_requested_.load()) return;  // STOPPING=1 went first: never ready
        last_status = srv.status();
        srv.tell("READY=1\nSTATUS=" + last_status);
        status.w = watchdog.w = this;
        status.fire = [](timer& t) { static_cast<worker_timer&>(t).w->report_status(); };
        loop->start(status, status_interval);
        if (srv.watchdog_) {
            watchdog.fire = [](timer& t) { static_cast<worker_timer&>(t).w->pet_watchdog(); };
            loop->start(watchdog, *srv.watchdog_ / 2);
        }
    }

    // Once a second: two counters read, a datagram only when the line changed.
    void report_status() {
        std::string now = srv.status();
        if (now != last_status) {
            last_status = std::move(now);
            srv.tell("STATUS=" + last_status);
        }
        loop->start(status, status_interval);
    }

    // WATCHDOG=1 only when every loop answered the last round: a loop stuck in a handler
    // stops the pings, and the manager restarts the service. Not during a stop, which the
    // manager bounds with its own timeout.
    void pet_watchdog() {
        if (srv.stop_requested_.load()) return;
        for (auto& w : srv.workers_) {
            if (w.get() != this && w->heartbeat.load() != round) {
                loop->start(watchdog, *srv.watchdog_ / 2);
                return;
            }
        }
        srv.tell("WATCHDOG=1");
        ++round;
        for (auto& w : srv.workers_)
            if (w.get() != this) w->post([wp = w.get(), r = round] { wp->heartbeat.store(r); });
        loop->start(watchdog, *srv.watchdog_ / 2);
    }

    void run(int signal_fd) {
        this_loop = index;
        struct forget_loop {
            ~forget_loop() { this_loop = server::no_loop; }
        } forget;
        event_loop l;
        // Whatever ends this function (a stop, a failure), no handler outlives its loop.
        struct cleanup {
            worker& w;
            event_loop& l;
            ~cleanup() {
                l.cancel(w.status);
                l.cancel(w.watchdog);
                l.cancel(w.lame_duck);
                w.services.destroy_all();
                w.destroy_connections();
                w.watch_nothrow(false);
                if (w.signals.fd >= 0) {
                    l.remove(w.signals.fd);
                    w.signals.fd = -1;
                }
                std::lock_guard lock(w.loop_mutex);
                w.loop = nullptr;
            }
        };
        {
            std::lock_guard lock(loop_mutex);
            loop = &l;
        }
        cleanup done{*this, l};
        if (srv.aborted_.load()) {
            abort();
            return;
        }
        backoff.w = lame_duck.w = grace.w = last_call.w = this;
        backoff.fire = [](timer& t) {
            auto& w = *static_cast<worker_timer&>(t).w;
            w.backing_off = false;
            w.resume_accepting();
        };
        if (signal_fd >= 0) {
            signals.w = this;
            signals.fd = signal_fd;
            l.add(signal_fd, EPOLLIN, signals);
        }
        if (srv.config_.type == sock::kind::dgram) {
            for (auto& s : own) {
                srv.active_.fetch_add(1);  // a datagram socket counts as one connection
                start(async_socket(std::move(s), l));
            }
            own.clear();
        } else {
            watch(true);
        }
        if (this == srv.workers_.front().get()) {
            start_services();
            if (srv.config_.notify) start_notifying();
        }
        // Posts made before `loop` was set were dropped: catch up on the stop they carried.
        if (srv.stop_requested_.load()) begin_stop(srv.stop_now_.load());
        if (srv.hurried_.load()) hurry();
        l.run();
    }
};

// -- setting up -------------------------------------------------------------------------------

namespace {

const char* type_name(int type) noexcept {
    switch (type) {
    case SOCK_STREAM: return "stream";
    case SOCK_DGRAM: return "datagram";
    case SOCK_SEQPACKET: return "seqpacket";
    default: return "raw";
    }
}

// A socket the server did not make must be what it would have made: of the configured type
// and, for streams, listening (a connected or merely bound one would fail every accept).
sock::family check_inherited(const socket& s, sock::kind type) {
    std::error_code ec;
    const auto where = s.getsockname(ec);
    const std::string what = "server: inherited fd " + std::to_string(s.fileno()) +
                             (ec ? std::string() : " (" + where.to_string() + ")");
    const int actual = s.getsockopt(SOL_SOCKET, SO_TYPE);
    if (actual != static_cast<int>(type))
        throw std::invalid_argument(what + " is a " + type_name(actual) + " socket; this server serves " +
                                    type_name(static_cast<int>(type)) + " sockets");
    if (type == sock::kind::stream && s.getsockopt(SOL_SOCKET, SO_ACCEPTCONN) == 0)
        throw std::invalid_argument(what + " is not listening");
    return static_cast<sock::family>(s.getsockopt(SOL_SOCKET, SO_DOMAIN));
}

// The numeric address and family to bind for a configured address.
address numeric_for(const address& a, sock::kind type) {
    if (a.is_unix() || a.family() != sock::family::unspec) return a;
    const auto infos = getaddrinfo(a.host(), a.port(), sock::family::unspec, type, AI_PASSIVE);
    return infos.front().addr;
}

}  // namespace

std::string server::bound_name(int fd) const {
    std::error_code ec;
    auto a = socket::adopt(fd, sock::family::unspec, sock::kind::stream, 0, true);
    const auto name = a.getsockname(ec);
    [[maybe_unused]] int released = a.detach();
    return ec ? "fd " + std::to_string(fd) : name.to_string();
}

server::server(server_config config, connection_handler handler)
    : config_(std::move(config)), handler_(std::move(handler)) {
    if (config_.threads == 0) config_.threads = std::max(1u, std::thread::hardware_concurrency());
    if (config_.listen.empty() && config_.inherited.empty())
        throw std::invalid_argument("server: nothing to listen on");
    if (config_.proxy_protocol && config_.type != sock::kind::stream)
        throw std::invalid_argument("server: proxy_protocol needs a stream server (PROXY headers "
                                    "begin connections, and datagrams have none)");
    for (unsigned i = 0; i < config_.threads; ++i) workers_.push_back(std::make_unique<worker>(*this, i));
    const bool stream = config_.type == sock::kind::stream;

    for (const auto& configured : config_.listen) {
        if (configured.is_unix()) {
            socket s(sock::family::local, config_.type);
            s.setblocking(false);  // accept must never block the loop
            s.bind(configured);
            if (stream) s.listen(config_.backlog);
            bound_.push_back(s.getsockname());
            if (stream) {
                share(std::move(s), sock::family::local);
            } else {
                workers_.front()->own.push_back(std::move(s));  // one reader for a Unix datagram path
            }
            continue;
        }
        address where = numeric_for(configured, config_.type);
        if (!config_.reuse_port) {
            // The loops' sockets all set SO_REUSEPORT, which would let them join a group
            // another process already listens with. A plain bind first fails as the
            // tutorial's server does when the port is taken ("Address already in use"), and
            // fixes port 0's choice. (Two servers starting at the very same moment can still
            // both pass it; the kernel offers no exclusive SO_REUSEPORT group.)
            socket probe(where.family(), config_.type);
            if (stream) probe.setsockopt(opt::reuse_address, true);
            probe.bind(where);
            where = probe.getsockname();
        }
        for (auto& w : workers_) {
            socket s(where.family(), config_.type);
            s.setblocking(false);  // accept must never block the loop
            if (stream) s.setsockopt(opt::reuse_address, true);
            s.setsockopt(opt::reuse_port, true);
            s.bind(where);
            if (&w == &workers_.front()) {
                where = s.getsockname();  // port 0 becomes the port every loop shares
                bound_.push_back(where);
            }
            if (stream) {
                s.listen(config_.backlog);
                if (config_.defer_accept) s.setsockopt(IPPROTO_TCP, TCP_DEFER_ACCEPT, 1);
                if (config_.tcp_nodelay) s.setsockopt(opt::tcp_nodelay, true);
                w->listeners.push_back({});
                auto& l = w->listeners.back();
                l.w = w.get();
                l.fd = s.fileno();
                l.family = where.family();
            }
            w->own.push_back(std::move(s));
        }
    }
    for (auto& s : config_.inherited) {
        const sock::family family = check_inherited(s, config_.type);
        s.setblocking(false);  // accept must never block the loop
        if (stream && config_.tcp_nodelay && family != sock::family::local)
            s.setsockopt(opt::tcp_nodelay, true);
        bound_.push_back(s.getsockname());
        if (stream) share(std::move(s), family);
        else workers_.front()->own.push_back(std::move(s));  // one reader, as for Unix paths
    }
    config_.inherited.clear();
    if (config_.notify) watchdog_ = watchdog_interval();
    // Last, so that a failed bind above leaves the signal handlers alone.
    if (config_.handle_signals) catch_signals();
}

server::~server() { release_signals(); }

// One listener for every loop; each watches it with EPOLLEXCLUSIVE, so a connection wakes one.
void server::share(socket listener, sock::family family) {
    for (auto& w : workers_) {
        w->listeners.push_back({});
        auto& l = w->listeners.back();
        l.w = w.get();
        l.fd = listener.fileno();
        l.family = family;
        l.shared = true;
    }
    shared_.push_back(std::move(listener));
}

std::string server::status() const {
    std::string line = stop_requested_.load() ? "stopping: " : "";
    line += std::to_string(active()) + " connection(s) open, " + std::to_string(accepted()) +
            " accepted since the start";
    return line;
}

void server::tell(const std::string& state) noexcept {
    if (!config_.notify) return;
    std::error_code ec;
    sock::notify(state, ec);
    if (!ec) {
        notify_failing_.store(false, std::memory_order_relaxed);
        return;
    }
    if (notify_failing_.exchange(true)) return;
    try {
        const char* where = std::getenv("NOTIFY_SOCKET");
        log("notify " + state.substr(0, state.find('\n')) + " to " + (where ? where : "(unset)") +
            ": " + error_reason(ec) + " (logged again only after one goes through)");
    } catch (...) {
    }
}

void server::log(std::string_view line) const {
    if (config_.log) {
        config_.log(line);
        return;
    }
    std::string text(line);
    text += '\n';
    std::fwrite(text.data(), 1, text.size(), stderr);
}

void server::connection_ended() {
    const auto left = active_.fetch_sub(1) - 1;
    const std::size_t max = config_.max_connections;
    if (max == 0 || left >= max) return;
    for (auto& w : workers_) {
        // A plain load first: this runs for every connection, pausing is rare.
        if (!w->paused_by_limit.load() || !w->paused_by_limit.exchange(false))
            continue;
        std::lock_guard lock(w->loop_mutex);
        if (w->loop == nullptr) continue;
        if (w->loop == event_loop::current()) w->resume_accepting();
        else w->loop->post([wp = w.get()] { wp->resume_accepting(); });
    }
}

std::size_t server::accepted() const noexcept { return stats().accepted; }

server_stats server::stats() const noexcept {
    server_stats s;
    s.active = active_.load(std::memory_order_relaxed);
    for (const auto& w : workers_) {
        const auto& c = w->counted;
        s.accepted += c.accepted.value();
        s.paused_at_limit += c.paused_at_limit.value();
        s.paused_for_descriptors += c.paused_for_descriptors.value();
        s.accept_errors += c.accept_errors.value();
        s.handler_errors += c.handler_errors.value();
        s.proxy_rejected += c.proxy_rejected.value();
    }
    return s;
}

std::size_t server::current_loop() noexcept { return this_loop; }

std::size_t server::proxy_rejected() const noexcept { return stats().proxy_rejected; }

void server::add_service(std::function<task<>()> make) {
    if (running_.load()) throw std::logic_error("server::add_service: the server is running");
    services_.push_back(std::move(make));
}

void server::stop() {
    const bool again = stop_requested_.exchange(true);
    if (again) stop_now_.store(true);
    if (!again) tell("STOPPING=1\nSTATUS=" + status());
    for (auto& w : workers_) w->post([wp = w.get(), again] { wp->begin_stop(again); });
}

void server::run() {
    if (running_.exchange(true)) throw std::logic_error("server::run: already running");
    loops_finished_.store(0);
    struct not_running {
        std::atomic<bool>& flag;
        ~not_running() { flag.store(false); }
    } reset{running_};
    std::mutex failure_mutex;
    std::exception_ptr failure;
    auto fail = [&](std::exception_ptr e) noexcept {
        {
            std::lock_guard lock(failure_mutex);
            if (!failure) failure = std::move(e);
        }
        abort_all();
    };
    std::vector<std::unique_ptr<loop_thread>> threads;
    try {
        // The loops' own threads start with the stop signals blocked besides what this thread
        // blocks, so that the kernel hands those to the program's threads: the loops are
        // never interrupted by them, and a signal cannot land on a thread still starting.
        ::sigset_t mask;
        ::pthread_sigmask(SIG_SETMASK, nullptr, &mask);  // reads it only
        for (int s : caught_signals) ::sigaddset(&mask, s);
        for (std::size_t i = 1; i < workers_.size(); ++i)
            threads.push_back(std::make_unique<loop_thread>(
                [w = workers_[i].get(), &fail] {
                    try {
                        w->run(-1);
                    } catch (...) {
                        fail(std::current_exception());
                    }
                },
                mask));
        workers_.front()->run(signal_read_);
    } catch (...) {
        fail(std::current_exception());
    }
    threads.clear();  // joins them
    aborted_.store(false);
    if (failure) std::rethrow_exception(failure);
}

void server::abort_all() noexcept {
    aborted_.store(true);
    for (auto& w : workers_) {
        std::lock_guard lock(w->loop_mutex);
        if (w->loop == nullptr) continue;  // not started yet: it sees aborted_ when it does
        try {
            w->loop->post([wp = w.get()] { wp->abort(); });
        } catch (...) {
            w->loop->stop();  // no memory for the post: at least end that loop
        }
    }
}

void server::catch_signals() {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) throw_error({errno, std::system_category()}, "pipe2");
    signal_read_ = fds[0];
    signal_write_ = fds[1];
    try {
        register_signal_pipe(signal_write_);
    } catch (...) {
        ::close(std::exchange(signal_read_, -1));
        ::close(std::exchange(signal_write_, -1));
        throw;
    }
}

void server::release_signals() noexcept {
    if (signal_write_ < 0) return;
    unregister_signal_pipe(signal_write_);
    ::close(std::exchange(signal_write_, -1));
    ::close(std::exchange(signal_read_, -1));
}

}  // namespace sock
