#include <sock/server.hpp>

#include <sock/event_loop.hpp>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

namespace sock {

namespace {

using namespace std::chrono_literals;

// How long accepting pauses when descriptors run out, and how often that is logged.
constexpr auto fd_backoff = 100ms;
constexpr auto log_interval = 1s;
// After the grace period, cancelled handlers get this long to finish before the loop ends.
constexpr auto cancel_grace = 1s;
// Accepts per wakeup of one listener before other events get their turn.
constexpr int accept_batch = 64;

bool out_of_descriptors(int e) noexcept {
    return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
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

    server& srv;
    std::vector<socket> own;  // this loop's SO_REUSEPORT sockets
    std::vector<listener> listeners;
    std::mutex loop_mutex;
    event_loop* loop = nullptr;  // set while run() runs; guarded by loop_mutex for posts
    std::atomic<bool> paused_by_limit{false};
    std::size_t live = 0;
    bool draining = false;
    bool backing_off = false;
    worker_timer backoff, grace, last_call;
    event_loop::clock::time_point last_log{};
    signal_handler signals;

    explicit worker(server& s) : srv(s) {}

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
            if (max != 0 && srv.active_.fetch_add(1) >= max) {
                srv.active_.fetch_sub(1);
                pause_for_limit();
                return false;
            }
            const int fd = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                const int e = errno;
                if (max != 0) srv.active_.fetch_sub(1);
                if (e == EINTR || e == ECONNABORTED) continue;
                if (e == EAGAIN || e == EWOULDBLOCK) return false;
                if (out_of_descriptors(e)) {
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
            srv.accepted_.fetch_add(1, std::memory_order_relaxed);
            start(async_socket(socket::adopt(fd, l.family, sock::kind::stream, 0, true), *loop));
        }
        return true;
    }

    void start(async_socket conn) {
        task<> t;
        try {
            t = srv.handler_(std::move(conn));
        } catch (const std::exception& e) {
            // No frame (out of memory, or the handler threw before its first suspension
            // point): this connection is dropped, the server goes on.
            srv.log(std::string("connection handler could not start: ") + e.what());
            srv.connection_ended();
            return;
        }
        ++live;
        spawn(std::move(t), &worker::on_done, this);
    }

    static void on_done(void* ctx, std::exception_ptr ex) noexcept {
        auto& w = *static_cast<worker*>(ctx);
        --w.live;
        if (ex) {
            try {
                std::rethrow_exception(ex);
            } catch (const std::exception& e) {
                w.srv.log(std::string("connection handler failed: ") + e.what());
            } catch (...) {
                w.srv.log("connection handler failed with a non-standard exception");
            }
        }
        w.srv.connection_ended();
        if (w.draining && w.live == 0) w.loop->stop();
    }

    void pause_for_limit() {
        paused_by_limit.store(true);
        watch(false);
        // A connection may have ended between the check and the flag: look again.
        if (srv.active_.load() < srv.config_.max_connections && paused_by_limit.exchange(false))
            resume_accepting();
    }

    void begin_stop() {
        if (draining) return;
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
        if (srv.config_.type == sock::kind::dgram) loop->cancel_all();  // nothing is in flight
        if (live == 0) {
            loop->stop();
            return;
        }
        grace.fire = [](timer& t) { static_cast<worker_timer&>(t).w->hurry(); };
        loop->start(grace, srv.config_.grace);
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
        if (live == 0) return;
        loop->cancel(grace);
        srv.log(std::to_string(live) + " connection(s) still open after the grace period; cancelling");
        loop->cancel_all();
        if (live == 0) return;
        last_call.fire = [](timer& t) {
            auto& w = *static_cast<worker_timer&>(t).w;
            w.srv.log(std::to_string(w.live) + " connection(s) ignored cancellation; stopping anyway");
            w.loop->stop();
        };
        loop->start(last_call, cancel_grace);
    }

    void on_signal() {
        ::signalfd_siginfo info{};
        while (::read(signals.fd, &info, sizeof info) == sizeof info) {
            const bool again = srv.stop_requested_.load();
            srv.log(std::string("received ") + (info.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM") +
                    (again ? ": cancelling open connections" : ": stopping gracefully"));
            if (again) {
                for (auto& w : srv.workers_) w->post([wp = w.get()] { wp->hurry(); });
            } else {
                srv.stop();
            }
        }
    }

    void run(int signal_fd) {
        event_loop l;
        {
            std::lock_guard lock(loop_mutex);
            loop = &l;
        }
        backoff.w = grace.w = last_call.w = this;
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
        if (srv.stop_requested_.load()) begin_stop();
        l.run();
        if (signal_fd >= 0) l.remove(signal_fd);
        watch(false);
        std::lock_guard lock(loop_mutex);
        loop = nullptr;
    }
};

// -- setting up -------------------------------------------------------------------------------

namespace {

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
    if (config_.listen.empty()) throw std::invalid_argument("server: nothing to listen on");
    for (unsigned i = 0; i < config_.threads; ++i) workers_.push_back(std::make_unique<worker>(*this));
    const bool stream = config_.type == sock::kind::stream;

    for (const auto& configured : config_.listen) {
        if (configured.is_unix()) {
            socket s(sock::family::local, config_.type);
            s.setblocking(false);  // accept must never block the loop
            s.bind(configured);
            if (stream) s.listen(config_.backlog);
            bound_.push_back(s.getsockname());
            const int fd = s.fileno();
            if (stream) {
                for (auto& w : workers_) {
                    w->listeners.push_back({});
                    auto& l = w->listeners.back();
                    l.w = w.get();
                    l.fd = fd;
                    l.family = sock::family::local;
                    l.shared = true;
                }
                shared_.push_back(std::move(s));
            } else {
                workers_.front()->own.push_back(std::move(s));  // one reader for a Unix datagram path
            }
            continue;
        }
        address where = numeric_for(configured, config_.type);
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
                w->listeners.push_back({});
                auto& l = w->listeners.back();
                l.w = w.get();
                l.fd = s.fileno();
                l.family = where.family();
            }
            w->own.push_back(std::move(s));
        }
    }
    // Last, so that a failed bind above leaves the signal mask alone.
    if (config_.handle_signals) block_signals();
}

server::~server() { restore_signals(); }

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

void server::stop() {
    stop_requested_.store(true);
    for (auto& w : workers_) w->post([wp = w.get()] { wp->begin_stop(); });
}

void server::run() {
    if (running_.exchange(true)) throw std::logic_error("server::run: already running");
    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < workers_.size(); ++i)
        threads.emplace_back([w = workers_[i].get()] { w->run(-1); });
    workers_.front()->run(signal_fd_);
    for (auto& t : threads) t.join();
    restore_signals();
    running_.store(false);
}

void server::block_signals() {
    // From construction on, so that a signal right after "listening" is not fatal; every
    // thread started later inherits the mask, and the first loop reads them from signal_fd_.
    ::sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    ::pthread_sigmask(SIG_BLOCK, &set, &old_mask_);
    signal_fd_ = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd_ < 0) {
        const std::error_code ec(errno, std::system_category());
        ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
        throw_error(ec, "signalfd");
    }
}

void server::restore_signals() noexcept {
    if (signal_fd_ < 0) return;
    // Signals that came after the loops ended were meant for this server, not the default
    // action: consume them before unblocking.
    ::signalfd_siginfo info{};
    while (::read(signal_fd_, &info, sizeof info) == sizeof info) {
    }
    ::close(std::exchange(signal_fd_, -1));
    ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
}

}  // namespace sock
