#include <sock/resolve.hpp>

#include "connect_attempt.hpp"

#include <netdb.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace sock {
namespace {

using detail::failure;

/// Happy Eyeballs on the loop: the blocking create_connection's race, driven by readiness
/// events and two timers instead of poll. co_await it once; it resumes its task when one
/// attempt connects, every attempt failed, the time is up, or the task is cancelled.
class race final {
public:
    race(event_loop& loop, const std::vector<addrinfo>& order, timeout_t timeout,
         const std::optional<address>& source, timeout_t delay, std::vector<failure>& failed,
         std::error_code& ec)
        : loop_(loop), order_(order), timeout_(timeout), source_(source), delay_(delay),
          failed_(failed), ec_(ec) {
        deadline_.self = this;
        deadline_.fire = [](timer& t) { static_cast<alarm&>(t).self->time_up(); };
        deadline_.on_cancel = [](timer& t) { static_cast<alarm&>(t).self->abort(); };
        next_.self = this;
        next_.fire = [](timer& t) { static_cast<alarm&>(t).self->start_more(true); };
    }
    race(const race&) = delete;
    race& operator=(const race&) = delete;
    ~race() { clear(); }

    bool await_ready() {
        // Python's create_connection with timeout 0 is a non-blocking connect: it never waits.
        never_wait_ = timeout_ && timeout_->count() == 0;
        if (timeout_ && !never_wait_) loop_.start(deadline_, *timeout_);
        start_more(false);
        return done_;
    }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        auto* cancel = detail::cancel_of(h);
        waiter_ = h;
        if (cancel != nullptr && cancel->requested) {
            cancel->requested = false;  // one cancellation fails one wait
            waiter_ = {};
            abort();
            return false;
        }
        if (cancel != nullptr) {
            cancel_ = cancel;
            cancel->set(&on_task_cancel, this);
        }
        return true;
    }
    socket await_resume() { return std::move(winner_); }

    bool canceled() const noexcept { return canceled_; }

private:
    struct alarm : timer {
        race* self = nullptr;
    };

    /// One connection attempt in flight, watched for writability.
    struct attempt final : io_handler {
        race* owner;
        socket s;
        const addrinfo* info;
        attempt(race* r, socket sock, const addrinfo* i) : owner(r), s(std::move(sock)), info(i) {}
        void on_io(std::uint32_t events) override { owner->check(*this, events); }
        void on_cancel() override { owner->abort(); }
    };

    void start_more(bool one_more) {
        while (!done_ && next_index_ < order_.size() &&
               (flying_.empty() || (delay_ && (delay_->count() == 0 || one_more)))) {
            one_more = false;
            start(order_[next_index_++]);
        }
        if (done_) return;
        if (flying_.empty()) return finish();  // every address failed
        if (next_index_ < order_.size() && delay_ && delay_->count() > 0 && !next_.armed())
            loop_.start(next_, *delay_);
    }

    void start(const addrinfo& info) {
        std::string step;
        std::error_code ec;
        auto s = detail::open_attempt(info.family, info.proto, source_, step, ec);
        if (ec) return fail(info, std::move(step), ec);
        ::sockaddr_storage ss{};
        ::socklen_t len = 0;
        info.addr.to_native(ss, len);  // getaddrinfo's addresses are numeric
        if (::connect(s.fileno(), reinterpret_cast<const ::sockaddr*>(&ss), len) == 0)
            return win(std::move(s));
        const int e = errno;
        if ((e != EINPROGRESS && e != EINTR) || never_wait_)
            return fail(info, {}, {e, std::system_category()});
        auto a = std::make_unique<attempt>(this, std::move(s), &info);
        loop_.add(a->s.fileno(), EPOLLOUT, *a);
        flying_.push_back(std::move(a));
        if (delay_ && delay_->count() > 0) loop_.start(next_, *delay_);  // the next one's delay
    }

    void check(attempt& a, std::uint32_t events) {
        int err = 0;
        ::socklen_t err_len = sizeof err;
        std::error_code ec;
        a.s.getsockopt(SOL_SOCKET, SO_ERROR, &err, err_len, ec);
        if (!ec && err == 0) {
            if ((events & EPOLLOUT) == 0) return;  // not yet: wait for the connect to end
            auto s = take(a);
            return win(std::move(s));
        }
        if (!ec) ec = {err, std::system_category()};
        const addrinfo& info = *a.info;
        take(a);  // closes it
        fail(info, {}, ec);
        if (!done_) start_more(true);  // a failure starts the next address at once
    }

    /// Stops watching a and hands its socket over.
    socket take(attempt& a) {
        loop_.remove(a.s.fileno());
        socket s = std::move(a.s);
        std::erase_if(flying_, [&](const auto& p) { return p.get() == &a; });
        return s;
    }

    void fail(const addrinfo& info, std::string step, std::error_code cause) {
        std::string what = info.addr.to_string();
        if (!step.empty()) what += ": " + step;
        failed_.push_back({std::move(what), cause});
        ec_ = cause;
    }

    void win(socket s) {
        winner_ = std::move(s);
        ec_.clear();
        finish();
    }

    void time_up() {
        // What is in flight and what never started failed alike.
        for (const auto& a : flying_) fail(*a->info, {}, timeout_error());
        for (; next_index_ < order_.size(); ++next_index_) fail(order_[next_index_], {}, timeout_error());
        finish();
    }

    /// The task was cancelled, or the loop cancels everything (a server's stop).
    void abort() {
        if (done_) return;
        canceled_ = true;
        ec_ = std::make_error_code(std::errc::operation_canceled);
        finish();
    }

    static void on_task_cancel(void* self) noexcept {
        auto& r = *static_cast<race*>(self);
        std::exchange(r.cancel_, nullptr)->requested = false;
        r.abort();
    }

    /// Ends the race (the losers close) and resumes the task; nothing of this race may be
    /// touched after the resume, which may destroy it.
    void finish() {
        done_ = true;
        clear();
        if (waiter_) std::exchange(waiter_, {}).resume();
    }

    void clear() noexcept {
        for (const auto& a : flying_) loop_.remove(a->s.fileno());
        flying_.clear();
        loop_.cancel(deadline_);
        loop_.cancel(next_);
        if (cancel_ != nullptr) std::exchange(cancel_, nullptr)->clear(this);
    }

    event_loop& loop_;
    const std::vector<addrinfo>& order_;
    timeout_t timeout_;
    const std::optional<address>& source_;
    timeout_t delay_;
    std::vector<failure>& failed_;
    std::error_code& ec_;
    std::vector<std::unique_ptr<attempt>> flying_;
    std::size_t next_index_ = 0;
    alarm deadline_;
    alarm next_;
    socket winner_ = socket::invalid();
    std::coroutine_handle<> waiter_;
    detail::cancel_state* cancel_ = nullptr;
    bool never_wait_ = false;
    bool done_ = false;
    bool canceled_ = false;
};

/// The time left of a call that started at `began` with `timeout`.
timeout_t remaining(timeout_t timeout, event_loop::clock::time_point began) {
    if (!timeout) return timeout;
    const auto left = *timeout - (event_loop::clock::now() - began);
    return left.count() > 0 ? left : std::chrono::nanoseconds(0);
}

/// The body of both forms; on failure `context` is what the error says before the cause.
task<async_socket> connect_to(address addr, timeout_t timeout, std::optional<address> source,
                              timeout_t delay, std::string& context, std::error_code& ec) {
    if (timeout && timeout->count() < 0)
        throw std::invalid_argument("async_create_connection: timeout must be >= 0");
    if (delay && delay->count() < 0)
        throw std::invalid_argument("async_create_connection: happy_eyeballs_delay must be >= 0");
    auto* loop = event_loop::current();
    if (loop == nullptr)
        throw std::logic_error("sock::async_create_connection: this thread has no event_loop");
    context = "connect " + addr.to_string();
    if (addr.is_unix()) {
        std::string step;
        auto s = detail::open_attempt(sock::family::local, 0, source, step, ec);
        if (ec) {
            if (!step.empty()) context += ": " + step;
            co_return async_socket();
        }
        async_socket conn(std::move(s), *loop);
        conn.settimeout(timeout);
        co_await conn.connect(addr, ec);
        if (ec) co_return async_socket();
        co_return conn;
    }
    const auto began = event_loop::clock::now();
    auto infos = co_await async_getaddrinfo(addr.host(), addr.port(), sock::family::unspec,
                                            sock::kind::stream, 0, timeout, ec);
    if (ec) co_return async_socket();
    if (infos.empty()) {  // getaddrinfo promises at least one, but an empty race never ends
        ec = {EAI_NONAME, gai_category()};
        co_return async_socket();
    }
    const auto order = detail::interleave(std::move(infos));
    std::vector<failure> failed;
    race r(*loop, order, remaining(timeout, began), source, delay, failed, ec);
    auto s = co_await r;
    if (ec) {
        if (!r.canceled()) context = detail::failure_context(addr, failed);
        co_return async_socket();
    }
    async_socket conn(std::move(s), *loop);
    conn.settimeout(timeout);
    co_return conn;
}

}  // namespace
}  // namespace sock

namespace sock SOCK_API {

task<async_socket> async_create_connection(address addr, timeout_t timeout,
                                           std::optional<address> source,
                                           timeout_t happy_eyeballs_delay) {
    std::string context;
    std::error_code ec;
    auto s = co_await connect_to(std::move(addr), timeout, std::move(source),
                                 happy_eyeballs_delay, context, ec);
    if (ec) throw_error(ec, context);
    co_return s;
}

task<async_socket> async_create_connection(address addr, timeout_t timeout,
                                           std::optional<address> source,
                                           timeout_t happy_eyeballs_delay, std::error_code& ec) {
    std::string context;
    co_return co_await connect_to(std::move(addr), timeout, std::move(source),
                                  happy_eyeballs_delay, context, ec);
}

}  // namespace sock
