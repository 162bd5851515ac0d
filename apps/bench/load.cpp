#include "bench/load.hpp"

#include "bench/outcome.hpp"

#include <sock/async_socket.hpp>
#include <sock/async_ssl.hpp>
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
    /// One client: its index and its buffer.
    struct slot {
        std::size_t index;
        std::span<char> buf;
        sock::ssl::session session{};  // --resume: what the previous request got
    };
    /// Counts a request in flight while it lives.
    struct in_flight_scope {
        load& l;
        explicit in_flight_scope(load& ld) : l(ld) { ++l.in_flight_; }
        ~in_flight_scope() { --l.in_flight_; }
        in_flight_scope(const in_flight_scope&) = delete;
        in_flight_scope& operator=(const in_flight_scope&) = delete;
    };
    /// How one request ended: its verdict (none: success), the error to back off from, when.
    struct ending {
        std::optional<error_kind> verdict;
        std::error_code ec;
        clock::time_point end;
        bool resumed = false;  // TLS: the handshake resumed a session
    };
    /// The open loop's clock: a timerfd, since the loop's own timers round to milliseconds.
    struct ticker final : sock::io_handler {
        load* l = nullptr;
        int fd = -1;
        void on_io(std::uint32_t) override { l->on_tick(); }
    };

    bool take_ticket() noexcept;
    void record(std::optional<error_kind> verdict, clock::time_point start, clock::time_point end,
                bool resumed = false);
    void stop() noexcept;
    void start_task(sock::task<> t, sock::task_set& group);
    static void task_done(void* context, std::exception_ptr ex) noexcept;

    sock::task<std::error_code> connect(sock::async_socket& conn);
    sock::task<ending> within_timeout(sock::task<ending> exchange);
    sock::task<ending> greet_exchange(slot& s);
    template <class Stream>
    sock::task<ending> greet_talk(slot& s, Stream& conn);
    sock::task<> greet_request(slot& s, clock::time_point start);
    sock::task<> greet_worker(slot& s);
    sock::task<> open_request(slot& s, clock::time_point scheduled);
    sock::task<ending> echo_connect(sock::async_socket& conn);
    sock::task<ending> echo_exchange(slot& s, sock::async_socket& conn);
    sock::task<> echo_worker(slot& s);
    sock::task<> progress();
    sock::task<> schedule();
    sock::task<> until_done();

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
    std::deque<slot> slots_;  // a deque: requests hold references to their slots
    std::vector<std::size_t> free_;  // open loop: idle slots
    ticker ticker_;
    // Every task of the run is in one of these, so stop() cancels them (each wakes from
    // whatever it waits in with operation_canceled) and run() joins them.
    sock::task_set work_;      // clients and requests
    sock::task_set schedule_;  // open loop: one task that lasts as long as the schedule
    sock::task_set aux_;       // the progress line
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
    : config_(config), loop_(loop) {
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
        slots_.push_back({i, std::span<char>(buffers_.data() + i * per_slot, per_slot)});
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

void load::record(std::optional<error_kind> verdict, clock::time_point start, clock::time_point end,
                  bool resumed) {
    if (stopping_) return;  // cut short by the end of the run: not a result
    if (verdict) {
        results_.count_error(*verdict);
    } else {
        ++results_.completed;
        if (resumed) ++results_.resumed;
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
    work_.cancel_all();
    aux_.cancel_all();
}

void load::start_task(sock::task<> t, sock::task_set& group) {
    group.spawn(std::move(t), &load::task_done, this);
}

void load::task_done(void* context, std::exception_ptr ex) noexcept {
    auto& l = *static_cast<load*>(context);
    if (!ex) return;
    try {
        std::rethrow_exception(ex);
    } catch (const sock::error& e) {
        if (l.stopping_ && e.code() == std::errc::operation_canceled) return;  // stop() did it
    } catch (...) {
    }
    // Only a bug or memory exhaustion gets here: end the run, and run() rethrows it.
    if (!l.failure_) l.failure_ = ex;
    l.stop();
}

results load::take_results() {
    results_.tls = config_.tls.has_value();
    if (finished_ != 0) results_.duration_s = std::chrono::duration<double>(last_end_ - t0_).count();
    return std::move(results_);
}


// -- requests ---------------------------------------------------------------------------------

sock::task<std::error_code> load::connect(sock::async_socket& conn) {
    const int fd = ::socket(family_, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) co_return errno_code();
    conn = sock::async_socket(
        sock::socket::adopt(fd, config_.target.family(), sock::kind::stream, 0, true), loop_);
    conn.settimeout(config_.timeout);  // the request's bound, which within_timeout enforces
    std::error_code ec;
    if (!unix_) {
        co_await conn.connect(config_.target, ec);
        co_return ec;
    }
    // Work-around: async_socket::connect takes a Unix socket's EAGAIN (the listener's queue
    // is full) for "in progress", then reports success on the EPOLLOUT|EPOLLHUP of the still
    // unconnected socket, and the first send fails with ENOTCONN. A Unix connect is never in
    // progress: it succeeds or fails at once. So call it here, and wait for room in the queue
    // as a blocking connect would, until the request's deadline cancels the wait.
    for (;;) {
        if (::connect(fd, reinterpret_cast<const ::sockaddr*>(&native_), native_len_) == 0)
            co_return std::error_code{};
        const auto e = errno_code();
        if (e.value() == EINTR) continue;
        if (e.value() != EAGAIN) co_return e;
        co_await sock::sleep(unix_retry_time);
    }
}

/// Bounds one request, connect included, by --timeout (sock::wait_for): when it passes, the
/// request is cancelled wherever it waits and counts as timed out. A cancelled request (the
/// deadline's, or stop()'s) throws operation_canceled out of its exchange, so that wait_for
/// can tell the two apart; stop()'s goes on up and ends the task.
sock::task<load::ending> load::within_timeout(sock::task<ending> exchange) {
    try {
        co_return co_await sock::wait_for(std::move(exchange), config_.timeout);
    } catch (const sock::timeout&) {
        co_return ending{error_kind::timeout, {}, clock::now()};
    }
}

/// The exchange's own calls report errors in ec; a cancellation becomes an exception here.
void throw_if_canceled(std::error_code ec) {
    if (ec == std::errc::operation_canceled) sock::throw_error(ec, "request");
}

sock::task<load::ending> load::greet_exchange(slot& s) {
    sock::async_socket conn;
    std::error_code ec = co_await connect(conn);
    throw_if_canceled(ec);
    if (ec) co_return ending{classify(ec), ec, clock::now()};
    if (!config_.tls) co_return co_await greet_talk(s, conn);
    // Within the request's bound (the socket's timeout, and within_timeout's).
    sock::ssl::wrap_options options;  // named: see async_wrap_socket
    options.server_hostname = config_.server_name;
    options.session = config_.resume && s.session ? &s.session : nullptr;
    sock::ssl::async_socket tls;
    try {
        tls = co_await sock::ssl::async_wrap_socket(*config_.tls, std::move(conn), options);
    } catch (const sock::error& e) {
        ec = e.code();
    }
    throw_if_canceled(ec);
    if (ec) {
        const auto kind = ec.category() == sock::ssl::ssl_category() ? error_kind::handshake : classify(ec);
        co_return ending{kind, ec, clock::now()};
    }
    ending e = co_await greet_talk(s, tls);
    e.resumed = tls.session_reused();
    // TLS 1.3 sends its tickets after the handshake: by the reply's end one is here.
    if (config_.resume && !e.verdict) s.session = tls.session();
    co_return e;
}

template <class Stream>
sock::task<load::ending> load::greet_talk(slot& s, Stream& conn) {
    reply_check check(config_.expect);
    std::error_code ec;
    co_await sock::sleep(config_.delay);
    bool reading = false;
    {
        co_await conn.sendall(config_.message, ec);
        throw_if_canceled(ec);
        // A server may answer and close without reading (nginx's `return`): a reset on
        // sending still leaves its reply to read.
        const auto send_ec = ec;
        if (!ec || classify(ec) == error_kind::reset) {
            ec.clear();
            reading = true;
            for (;;) {
                const std::size_t n = co_await conn.recv_into(s.buf, ec);
                if (ec || n == 0) break;
                if (!check.feed(s.buf.first(n))) break;
            }
            throw_if_canceled(ec);
            if (send_ec && check.received() == 0) {
                reading = false;
                ec = send_ec;
            }
        }
    }
    ending e{reading ? check.verdict(ec) : classify(ec), reading ? std::error_code{} : ec,
             clock::now()};
    co_return e;
}

sock::task<> load::greet_request(slot& s, clock::time_point start) {
    ending e;
    {
        in_flight_scope counted(*this);
        e = co_await within_timeout(greet_exchange(s));
    }
    record(e.verdict, start, e.end, e.resumed);
    if (e.ec && needs_backoff(e.ec) && !stopping_) co_await sock::sleep(backoff_time);
}

sock::task<> load::greet_worker(slot& s) {
    while (take_ticket()) {
        const auto turn = loop_.now();  // the loop's time changes only when it gets to run
        co_await greet_request(s, clock::now());
        if (loop_.now() == turn && !stopping_) co_await sock::sleep(yield_time);
    }
}

sock::task<> load::open_request(slot& s, clock::time_point scheduled) {
    struct give_back {
        load& l;
        std::size_t index;
        ~give_back() { l.free_.push_back(index); }  // also when stop() cancels the request
    } back{*this, s.index};
    co_await greet_request(s, scheduled);
}

sock::task<load::ending> load::echo_connect(sock::async_socket& conn) {
    std::error_code ec = co_await connect(conn);
    throw_if_canceled(ec);
    if (!ec && !unix_) {
        const int one = 1;
        ::setsockopt(conn.fileno(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    co_return ending{ec ? std::optional(classify(ec)) : std::nullopt, ec, clock::now()};
}

sock::task<load::ending> load::echo_exchange(slot& s, sock::async_socket& conn) {
    const std::string_view payload = payload_;
    const std::size_t size = payload.size();
    std::error_code ec;
    std::size_t sent = 0;
    std::size_t got = 0;
    bool eof = false;
    while (got < size) {
        if (sent < size) {
            // Wait for room only when nothing is on its way back; otherwise go and read, so
            // that a message bigger than the socket buffers cannot deadlock.
            const bool may_wait = got == sent;
            if (!may_wait) conn.settimeout(std::chrono::nanoseconds(0));
            const std::size_t n = co_await conn.send(payload.substr(sent), ec);
            if (!may_wait) conn.settimeout(config_.timeout);
            if (ec == std::errc::resource_unavailable_try_again && !may_wait) ec.clear();
            if (ec) break;
            sent += n;
        }
        // The buffer holds one byte more than a message: a complete echo is then a short
        // read, after which the engine waits for epoll instead of trying first.
        const std::size_t n = co_await conn.recv_into(s.buf.subspan(got), ec);
        if (ec) break;
        if (n == 0) {
            eof = true;
            break;
        }
        got += n;
    }
    throw_if_canceled(ec);
    ending e{std::nullopt, ec, clock::now()};
    if (ec) e.verdict = classify(ec);
    else if (eof || got != size || std::memcmp(s.buf.data(), payload.data(), size) != 0)
        e.verdict = error_kind::bad_reply;
    co_return e;
}

sock::task<> load::echo_worker(slot& s) {
    sock::async_socket conn;
    bool connected = false;
    while (!stopping_) {
        const auto turn = loop_.now();
        if (!connected) {
            // Connecting is not a request, but a failed attempt counts as one, so that a run
            // against a dead server still ends.
            const auto start = clock::now();
            ending e;
            {
                in_flight_scope counted(*this);
                e = co_await within_timeout(echo_connect(conn));
            }
            if (!e.verdict) {
                connected = true;
                continue;
            }
            conn.close();
            if (!take_ticket()) break;
            record(e.verdict, start, e.end);
            if (e.ec && needs_backoff(e.ec) && !stopping_) co_await sock::sleep(backoff_time);
            else if (loop_.now() == turn && !stopping_) co_await sock::sleep(yield_time);
            continue;
        }
        if (!take_ticket()) break;
        const auto start = clock::now();
        ending e;
        {
            in_flight_scope counted(*this);
            e = co_await within_timeout(echo_exchange(s, conn));
        }
        record(e.verdict, start, e.end);
        if (e.verdict) {
            // Whatever went wrong, the stream is out of step now: start afresh.
            conn.close();
            connected = false;
        }
        if (loop_.now() == turn && !stopping_) co_await sock::sleep(yield_time);
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
    start_task(schedule(), schedule_);  // work to wait for, even with nothing in flight
}

void load::stop_ticking() noexcept {
    if (ticker_.fd < 0) return;
    loop_.remove(ticker_.fd);
    ::close(std::exchange(ticker_.fd, -1));
    schedule_.cancel_all();
}

sock::task<> load::schedule() {
    // Lasts until stop_ticking cancels it; the ticker does the work.
    try {
        co_await sock::sleep(std::chrono::hours(24 * 365));
    } catch (const sock::error& e) {
        if (e.code() != std::errc::operation_canceled) throw;
    }
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
        try {
            co_await sock::sleep(progress_interval);
        } catch (const sock::error&) {
            break;  // stop() cancelled it
        }
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
        // With --count too, whichever comes first: reaching the count calls stop(), and the
        // work ends before the time is up.
        try {
            co_await sock::wait_for(until_done(), config_.duration);
        } catch (const sock::timeout&) {
            stop();  // the time is up: what is in flight is cut short, not counted
        }
    }
    co_await until_done();
    stop();
    co_await aux_.join();
    if (failure_) std::rethrow_exception(failure_);
}

sock::task<> load::until_done() {
    co_await schedule_.join();
    co_await work_.join();
}

}  // namespace

results run_load(const load_config& config) {
    sock::event_loop loop;
    load l(config, loop);
    sock::run(loop, l.run());
    return l.take_results();
}

}  // namespace bench
