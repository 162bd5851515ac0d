#include "bench/load.hpp"

#include "bench/outcome.hpp"

#include <sock/async_socket.hpp>
#include <sock/coro.hpp>
#include <sock/event_loop.hpp>
#include <sock/task.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <coroutine>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <deque>
#include <exception>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace bench {

namespace {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// Pause after errors that would only repeat at once (no ports or descriptors left).
constexpr std::chrono::nanoseconds backoff_time = 10ms;
/// A Unix listener's queue is full: try again after this, as a blocking connect would wait.
constexpr std::chrono::nanoseconds unix_retry_time = 1ms;
/// How long a client that finished a request without waiting lets the loop run.
constexpr std::chrono::nanoseconds yield_time = 1us;
constexpr std::chrono::nanoseconds progress_interval = 1s;
/// Open loop: the scheduler wakes at most this often and starts every request that is due.
constexpr std::chrono::nanoseconds min_tick = 100us;

std::error_code errno_code() noexcept { return {errno, std::system_category()}; }

void write_stderr(std::string_view text) noexcept {
    [[maybe_unused]] const auto n = ::write(2, text.data(), text.size());
}

std::uint64_t microseconds(clock::duration d) noexcept {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    return us > 0 ? static_cast<std::uint64_t>(us) : 0;
}

/// A wait that its owner can end early (sock::sleep cannot be cut short). Must not move
/// while a coroutine waits on it.
class alarm {
public:
    explicit alarm(sock::event_loop& loop) noexcept : loop_(&loop) { node_.fire = &alarm::fired; }
    alarm(const alarm&) = delete;
    alarm& operator=(const alarm&) = delete;

    struct awaiter {
        alarm& a;
        std::chrono::nanoseconds after;
        bool await_ready() const noexcept { return after.count() <= 0; }
        void await_suspend(std::coroutine_handle<> h) {
            a.node_.waiter = h;
            a.loop_->start(a.node_, after);
        }
        void await_resume() const noexcept {}
    };
    awaiter wait(std::chrono::nanoseconds after) noexcept { return {*this, after}; }

    /// Ends a wait in progress now, resuming its coroutine before returning; else nothing.
    void ring() noexcept {
        if (!node_.armed()) return;
        loop_->cancel(node_);
        std::exchange(node_.waiter, {}).resume();
    }

private:
    struct node : sock::timer {
        std::coroutine_handle<> waiter;
    };
    static void fired(sock::timer& t) { std::exchange(static_cast<node&>(t).waiter, {}).resume(); }

    sock::event_loop* loop_;
    node node_;
};

/// Counts running tasks; one coroutine may wait until none is left.
class wait_group {
public:
    void add() noexcept { ++pending_; }
    void done() noexcept {
        if (--pending_ == 0 && waiter_) std::exchange(waiter_, {}).resume();
    }
    bool await_ready() const noexcept { return pending_ == 0; }
    void await_suspend(std::coroutine_handle<> h) noexcept { waiter_ = h; }
    void await_resume() const noexcept {}

private:
    std::size_t pending_ = 0;
    std::coroutine_handle<> waiter_;
};

/// The whole run: clients ("slots"), their requests, the schedule, the counts.
class load {
public:
    load(const load_config& config, sock::event_loop& loop);
    ~load();
    load(const load&) = delete;
    load& operator=(const load&) = delete;

    sock::task<> run();
    results take_results();

private:
    struct slot;
    struct deadline_timer : sock::timer {
        slot* owner = nullptr;
    };
    /// One client: its buffer, its connection while one is open, its request deadline.
    struct slot {
        slot(load& l, std::size_t i, std::span<char> b) : index(i), buf(b), rest(l.loop_) {
            deadline.owner = this;
            deadline.fire = &load::expired;
        }
        /// Ends whatever this client waits for: its connection's call, or its rest.
        void interrupt() noexcept {
            // shutdown(2), not conn->close(): the call wakes through epoll on the loop's next
            // turn (a connect still in SYN_SENT too, with ECONNRESET), so nothing here resumes
            // a coroutine that might free the socket under us; the coroutine closes its own.
            if (conn != nullptr && *conn) ::shutdown(conn->fileno(), SHUT_RDWR);
            rest.ring();
        }

        std::size_t index;
        std::span<char> buf;
        sock::async_socket* conn = nullptr;  // the open connection, for interrupt()
        bool timed_out = false;
        deadline_timer deadline;
        alarm rest;  // --delay, back-off, yield
    };
    /// Arms a slot's deadline for one request and counts it in flight, until destroyed.
    struct request_scope {
        load& l;
        slot& s;
        request_scope(load& ld, slot& sl) : l(ld), s(sl) {
            s.timed_out = false;
            l.loop_.start(s.deadline, l.config_.timeout);
            ++l.in_flight_;
        }
        ~request_scope() {
            l.loop_.cancel(s.deadline);
            --l.in_flight_;
        }
        request_scope(const request_scope&) = delete;
        request_scope& operator=(const request_scope&) = delete;
    };
    /// Forgets a slot's connection before the connection goes.
    struct conn_scope {
        slot& s;
        ~conn_scope() { s.conn = nullptr; }
    };
    /// The open loop's clock: a timerfd, since the loop's own timers round to milliseconds.
    struct ticker final : sock::io_handler {
        load* l = nullptr;
        int fd = -1;
        void on_io(std::uint32_t) override { l->on_tick(); }
    };

    static void expired(sock::timer& t) {
        auto& s = *static_cast<deadline_timer&>(t).owner;
        s.timed_out = true;
        s.interrupt();
    }
    bool interrupted(const slot& s) const noexcept { return s.timed_out || stopping_; }

    bool take_ticket() noexcept;
    void record(std::optional<error_kind> verdict, clock::time_point start, clock::time_point end);
    void stop() noexcept;
    struct task_group {
        load* owner;
        wait_group tasks;
    };
    void start_task(sock::task<> t, task_group& group);
    static void task_done(void* context, std::exception_ptr ex) noexcept;

    sock::task<std::error_code> connect(slot& s, sock::async_socket& conn);
    sock::task<> greet_request(slot& s, clock::time_point start);
    sock::task<> greet_worker(slot& s);
    sock::task<> open_request(slot& s, clock::time_point scheduled);
    sock::task<> echo_worker(slot& s);
    sock::task<> progress();

    void start_ticking();
    void stop_ticking() noexcept;
    void on_tick();

    const load_config& config_;
    sock::event_loop& loop_;
    int family_ = AF_INET;
    bool unix_ = false;
    ::sockaddr_storage native_{};  // the target, for Unix connects
    ::socklen_t native_len_ = 0;
    std::string payload_;  // echo: what every client sends
    std::vector<char> buffers_;
    std::deque<slot> slots_;  // a deque: slots hold timers and never move
    std::vector<std::size_t> free_;  // open loop: idle slots
    ticker ticker_;
    alarm main_alarm_;
    alarm progress_alarm_;
    task_group work_{this, {}};  // clients, requests and the schedule
    task_group aux_{this, {}};   // the progress line
    std::exception_ptr failure_;

    bool stopping_ = false;
    clock::time_point t0_{};
    clock::time_point last_end_{};
    std::uint64_t issued_ = 0;    // tickets taken: requests started or refused for overload
    std::uint64_t finished_ = 0;  // requests that ended, counted
    std::uint64_t scheduled_ = 0;  // open loop: requests whose time has come
    std::size_t in_flight_ = 0;
    results results_;
};

load::load(const load_config& config, sock::event_loop& loop)
    : config_(config), loop_(loop), main_alarm_(loop), progress_alarm_(loop) {
    unix_ = config_.target.is_unix();
    family_ = static_cast<int>(config_.target.family());
    if (!config_.target.to_native(native_, native_len_))
        throw std::invalid_argument("not a numeric address or Unix path: " + config_.target.to_string());
    std::size_t per_slot = 0;
    if (config_.mode == mode::echo) {
        payload_.resize(config_.size);
        for (std::size_t i = 0; i < payload_.size(); ++i) payload_[i] = static_cast<char>('a' + i % 26);
        per_slot = config_.size + 1;  // one more: a full echo is then a short read (see recv)
    } else {
        per_slot = config_.expect.size() + 64;
    }
    buffers_.resize(per_slot * config_.connections);
    for (std::size_t i = 0; i < config_.connections; ++i)
        slots_.emplace_back(*this, i, std::span<char>(buffers_.data() + i * per_slot, per_slot));
    free_.reserve(config_.connections);
    for (std::size_t i = config_.connections; i > 0; --i) free_.push_back(i - 1);
    ticker_.l = this;
    // Work-around for event_loop::fire_timers as of 8fb7b9e: it walks its vector of
    // per-duration lists with an iterator while the callbacks it calls may start a timer of a
    // duration not seen before, which appends to that vector; on reallocation the walk goes on
    // in freed memory. So create every list this run uses now (a list, once made, stays).
    // Harmless, and removable, once fire_timers holds no iterator across a callback.
    sock::timer warm;
    for (auto d : {config_.timeout, config_.delay, config_.duration, backoff_time, unix_retry_time,
                   yield_time, progress_interval}) {
        if (d.count() <= 0) continue;
        loop_.start(warm, d);
        loop_.cancel(warm);
    }
}

load::~load() { stop_ticking(); }

// -- bookkeeping ------------------------------------------------------------------------------

bool load::take_ticket() noexcept {
    if (stopping_ || (config_.count != 0 && issued_ >= config_.count)) return false;
    ++issued_;
    return true;
}

void load::record(std::optional<error_kind> verdict, clock::time_point start, clock::time_point end) {
    if (stopping_) return;  // cut short by the end of the run: not a result
    if (verdict) {
        results_.count_error(*verdict);
    } else {
        ++results_.completed;
        results_.latency.record(microseconds(end - start));
    }
    last_end_ = std::max(last_end_, end);
    ++finished_;
    if (config_.count != 0 && finished_ >= config_.count) stop();
}

void load::stop() noexcept {
    if (stopping_) return;
    stopping_ = true;
    stop_ticking();
    for (auto& s : slots_) s.interrupt();
    main_alarm_.ring();
    progress_alarm_.ring();
}

void load::start_task(sock::task<> t, task_group& group) {
    group.tasks.add();
    sock::spawn(std::move(t), &load::task_done, &group);
}

void load::task_done(void* context, std::exception_ptr ex) noexcept {
    auto& group = *static_cast<task_group*>(context);
    if (ex) {
        // Only a bug or memory exhaustion gets here: end the run, and run() rethrows it.
        if (!group.owner->failure_) group.owner->failure_ = ex;
        group.owner->stop();
    }
    group.tasks.done();
}

results load::take_results() {
    if (finished_ != 0) results_.duration_s = std::chrono::duration<double>(last_end_ - t0_).count();
    return std::move(results_);
}


// -- requests ---------------------------------------------------------------------------------

sock::task<std::error_code> load::connect(slot& s, sock::async_socket& conn) {
    const int fd = ::socket(family_, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) co_return errno_code();
    conn = sock::async_socket(
        sock::socket::adopt(fd, config_.target.family(), sock::kind::stream, 0, true), loop_);
    // Each call is bounded too, in case a wake-up by shutdown(2) ever goes missing.
    conn.settimeout(config_.timeout);
    s.conn = &conn;
    std::error_code ec;
    if (!unix_) {
        co_await conn.connect(config_.target, ec);
        co_return ec;
    }
    // Work-around: async_socket::connect takes a Unix socket's EAGAIN (the listener's queue
    // is full) for "in progress", then reports success on the EPOLLOUT|EPOLLHUP of the still
    // unconnected socket, and the first send fails with ENOTCONN. A Unix connect is never in
    // progress: it succeeds or fails at once. So call it here, and wait for room in the queue
    // as a blocking connect would, until the request's deadline.
    for (;;) {
        if (::connect(fd, reinterpret_cast<const ::sockaddr*>(&native_), native_len_) == 0)
            co_return std::error_code{};
        const auto e = errno_code();
        if (e.value() == EINTR) continue;
        if (e.value() != EAGAIN || interrupted(s)) co_return e;
        co_await s.rest.wait(unix_retry_time);
    }
}

sock::task<> load::greet_request(slot& s, clock::time_point start) {
    std::optional<error_kind> verdict;
    std::error_code ec;
    clock::time_point end;
    {
        request_scope request(*this, s);
        sock::async_socket conn;
        conn_scope forget{s};
        reply_check check(config_.expect);
        ec = co_await connect(s, conn);
        if (!ec && !interrupted(s)) co_await s.rest.wait(config_.delay);
        bool reading = false;
        if (!ec && !interrupted(s)) {
            co_await conn.sendall(config_.message, ec);
            // A server may answer and close without reading (nginx's `return`): a reset on
            // sending still leaves its reply to read.
            const auto send_ec = ec;
            if (!ec || classify(ec) == error_kind::reset) {
                ec.clear();
                reading = true;
                while (!interrupted(s)) {
                    const std::size_t n = co_await conn.recv_into(s.buf, ec);
                    if (ec || n == 0) break;
                    if (!check.feed(s.buf.first(n))) break;
                }
                if (send_ec && check.received() == 0) {
                    reading = false;
                    ec = send_ec;
                }
            }
        }
        end = clock::now();
        if (s.timed_out) verdict = error_kind::timeout;
        else if (reading) verdict = check.verdict(ec);
        else verdict = classify(ec);
        if (reading) ec.clear();
    }
    record(verdict, start, end);
    if (ec && needs_backoff(ec) && !stopping_) co_await s.rest.wait(backoff_time);
}

sock::task<> load::greet_worker(slot& s) {
    while (take_ticket()) {
        const auto turn = loop_.now();  // the loop's time changes only when it gets to run
        co_await greet_request(s, clock::now());
        if (loop_.now() == turn && !stopping_) co_await s.rest.wait(yield_time);
    }
}

sock::task<> load::open_request(slot& s, clock::time_point scheduled) {
    co_await greet_request(s, scheduled);
    free_.push_back(s.index);
}

sock::task<> load::echo_worker(slot& s) {
    sock::async_socket conn;
    conn_scope forget{s};
    bool connected = false;
    const std::string_view payload = payload_;
    const std::size_t size = payload.size();
    while (!stopping_) {
        const auto turn = loop_.now();
        if (!connected) {
            // Connecting is not a request, but a failed attempt counts as one, so that a run
            // against a dead server still ends.
            const auto start = clock::now();
            std::error_code ec;
            bool timed_out = false;
            {
                request_scope request(*this, s);
                ec = co_await connect(s, conn);
                timed_out = s.timed_out;
            }
            if (!ec && !timed_out) {
                connected = true;
                if (!unix_) {
                    const int one = 1;
                    ::setsockopt(conn.fileno(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                }
                continue;
            }
            s.conn = nullptr;
            conn.close();  // nothing waits on it: safe
            if (!take_ticket()) break;
            record(timed_out ? error_kind::timeout : classify(ec), start, clock::now());
            if (needs_backoff(ec) && !stopping_) co_await s.rest.wait(backoff_time);
            else if (loop_.now() == turn && !stopping_) co_await s.rest.wait(yield_time);
            continue;
        }
        if (!take_ticket()) break;
        const auto start = clock::now();
        std::error_code ec;
        std::size_t sent = 0;
        std::size_t got = 0;
        bool eof = false;
        bool timed_out = false;
        {
            request_scope request(*this, s);
            while (got < size && !interrupted(s)) {
                if (sent < size) {
                    // Wait for room only when nothing is on its way back; otherwise go and
                    // read, so that a message bigger than the socket buffers cannot deadlock.
                    const bool may_wait = got == sent;
                    if (!may_wait) conn.settimeout(std::chrono::nanoseconds(0));
                    const std::size_t n = co_await conn.send(payload.substr(sent), ec);
                    if (!may_wait) conn.settimeout(config_.timeout);
                    if (ec == std::errc::resource_unavailable_try_again && !may_wait) ec.clear();
                    if (ec) break;
                    sent += n;
                }
                // The buffer holds one byte more than a message: a complete echo is then a
                // short read, after which the engine waits for epoll instead of trying first.
                const std::size_t n = co_await conn.recv_into(s.buf.subspan(got), ec);
                if (ec) break;
                if (n == 0) {
                    eof = true;
                    break;
                }
                got += n;
            }
            timed_out = s.timed_out;
        }
        const auto end = clock::now();
        std::optional<error_kind> verdict;
        if (timed_out) verdict = error_kind::timeout;
        else if (ec) verdict = classify(ec);
        else if (eof || got != size || std::memcmp(s.buf.data(), payload.data(), size) != 0)
            verdict = error_kind::bad_reply;
        record(verdict, start, end);
        if (verdict) {
            // Whatever went wrong, the stream is out of step now: start afresh.
            s.conn = nullptr;
            conn.close();
            connected = false;
        }
        if (loop_.now() == turn && !stopping_) co_await s.rest.wait(yield_time);
    }
}

// -- the open loop's schedule -----------------------------------------------------------------

void load::start_ticking() {
    const double interval_ns = 1e9 / config_.rate;
    const auto period = std::max<std::chrono::nanoseconds>(
        min_tick, std::chrono::nanoseconds(static_cast<std::int64_t>(interval_ns)));
    ticker_.fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (ticker_.fd < 0) throw std::system_error(errno_code(), "timerfd_create");
    ::itimerspec spec{};
    spec.it_interval.tv_sec = static_cast<time_t>(period.count() / 1'000'000'000);
    spec.it_interval.tv_nsec = static_cast<long>(period.count() % 1'000'000'000);
    spec.it_value = spec.it_interval;
    if (::timerfd_settime(ticker_.fd, 0, &spec, nullptr) < 0) {
        const auto ec = errno_code();
        ::close(std::exchange(ticker_.fd, -1));
        throw std::system_error(ec, "timerfd_settime");
    }
    loop_.add(ticker_.fd, EPOLLIN, ticker_);
    work_.tasks.add();  // the schedule is work to wait for, even with nothing in flight
}

void load::stop_ticking() noexcept {
    if (ticker_.fd < 0) return;
    loop_.remove(ticker_.fd);
    ::close(std::exchange(ticker_.fd, -1));
    work_.tasks.done();
}

void load::on_tick() {
    std::uint64_t expirations = 0;
    [[maybe_unused]] const auto n = ::read(ticker_.fd, &expirations, sizeof expirations);
    const auto now = clock::now();
    const double interval_ns = 1e9 / config_.rate;
    while (!stopping_) {
        const auto at = t0_ + std::chrono::nanoseconds(
                                  static_cast<std::int64_t>(static_cast<double>(scheduled_) * interval_ns));
        if (at > now) break;
        if ((config_.duration.count() > 0 && at - t0_ >= config_.duration) || !take_ticket()) {
            stop_ticking();  // the schedule is done; requests in flight finish on their own
            break;
        }
        ++scheduled_;
        if (free_.empty()) {
            record(error_kind::overload, at, at);
            continue;
        }
        slot& s = slots_[free_.back()];
        free_.pop_back();
        // Latency counts from the scheduled time, so a late start is the server's delay too
        // (no coordinated omission).
        start_task(open_request(s, at), work_);
    }
}

// -- the run ----------------------------------------------------------------------------------

sock::task<> load::progress() {
    std::uint64_t before = 0;
    auto last = clock::now();
    bool shown = false;
    while (!stopping_) {
        co_await progress_alarm_.wait(progress_interval);
        if (stopping_) break;
        const auto now = clock::now();
        const double interval = std::chrono::duration<double>(now - last).count();
        const double rate = interval > 0 ? static_cast<double>(results_.completed - before) / interval : 0;
        before = results_.completed;
        last = now;
        char line[200];
        const int len = std::snprintf(
            line, sizeof line, "\r%7.1f s  completed %llu  rate %.0f/s  errors %llu  in flight %zu\x1b[K",
            std::chrono::duration<double>(now - t0_).count(),
            static_cast<unsigned long long>(results_.completed), rate,
            static_cast<unsigned long long>(results_.error_total()), in_flight_);
        if (len > 0) write_stderr({line, std::min(sizeof line - 1, static_cast<std::size_t>(len))});
        shown = true;
    }
    if (shown) write_stderr("\r\x1b[K");  // leave the terminal's line clean for the summary
}

sock::task<> load::run() {
    t0_ = clock::now();
    if (config_.progress) start_task(progress(), aux_);
    if (config_.rate > 0) {
        start_ticking();
        on_tick();  // the first request is due now
    } else {
        for (auto& s : slots_)
            start_task(config_.mode == mode::echo ? echo_worker(s) : greet_worker(s), work_);
    }
    if (config_.duration.count() > 0) {
        // With --count too, whichever comes first: reaching the count calls stop(), which
        // ends this wait early.
        co_await main_alarm_.wait(config_.duration);
        stop();
    }
    co_await work_.tasks;
    stop();
    co_await aux_.tasks;
    if (failure_) std::rethrow_exception(failure_);
}

}  // namespace

results run_load(const load_config& config) {
    sock::event_loop loop;
    load l(config, loop);
    sock::run(loop, l.run());
    return l.take_results();
}

}  // namespace bench
