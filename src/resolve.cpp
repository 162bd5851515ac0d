#include <sock/resolve.hpp>

#include <netdb.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>

namespace sock {
namespace detail {

// A hosts-file look-up is CPU work: more threads than cores only take the CPU from the loop
// (bench/RESULTS.md, Resolution). Four, as libuv's pool, still overlaps DNS waits.
constexpr std::size_t default_resolver_threads = 4;

// Shared by the awaiter (on its loop's thread) and the resolver thread that runs it. `waiting`
// is the awaiter while it still wants the answer; it is cleared only on the loop's thread, under
// `m`, so that a resolver thread never posts to a loop whose awaiter has gone.
struct lookup {
    std::string host;
    std::uint16_t port = 0;
    sock::family fam = sock::family::unspec;
    sock::kind type = sock::kind::stream;
    int flags = 0;
    event_loop* loop = nullptr;

    std::mutex m;
    getaddrinfo_awaiter* waiting = nullptr;

    bool wanted() {
        std::lock_guard lock(m);
        return waiting != nullptr;
    }
    void drop() {
        std::lock_guard lock(m);
        waiting = nullptr;
    }
    /// On the loop's thread: the answer, to the awaiter if it still waits.
    void answer(std::vector<addrinfo> result, std::error_code ec) noexcept {
        if (waiting != nullptr) waiting->deliver(std::move(result), ec);
    }
};

namespace {

// The look-ups waiting for a thread, and the threads. Threads are detached and the pool is
// never destroyed: a thread may still sit in getaddrinfo (up to resolv.conf's timeouts) when
// the program exits, and must not find its pool gone.
class resolver_pool {
public:
    void submit(std::shared_ptr<lookup> job) {
        std::unique_lock lock(m_);
        queue_.push_back(std::move(job));
        if (idle_ >= queue_.size() || threads_ >= max_threads_) {
            lock.unlock();
            cv_.notify_one();
            return;
        }
        ++threads_;
        try {
            std::thread([this] {
                ::pthread_setname_np(::pthread_self(), "sock-resolver");  // for top -H, gdb
                work();
            }).detach();
        } catch (...) {
            --threads_;
            if (threads_ > 0) return;  // the threads there are will take it
            queue_.pop_back();
            throw;
        }
    }

    void set_max(std::size_t n) {
        std::lock_guard lock(m_);
        max_threads_ = n;
    }

private:
    void work() {
        std::unique_lock lock(m_);
        for (;;) {
            ++idle_;
            const bool got = cv_.wait_for(lock, idle_exit, [this] { return !queue_.empty(); });
            --idle_;
            if (!got || threads_ > max_threads_) break;
            auto job = std::move(queue_.front());
            queue_.pop_front();
            lock.unlock();
            run(std::move(job));
            lock.lock();
        }
        --threads_;
    }

    static void run(std::shared_ptr<lookup> job) {
        if (!job->wanted()) return;  // cancelled or timed out while it queued
        std::error_code ec;
        auto result = getaddrinfo(job->host, job->port, job->fam, job->type, job->flags, ec);
        std::unique_lock lock(job->m);
        if (job->waiting == nullptr) return;
        // Posted under the lock: until it is released the awaiter, and so its loop, stays.
        // The awaiter may still go before the function runs; it then finds `waiting` empty.
        auto* loop = job->loop;
        loop->post([job = std::move(job), result = std::move(result), ec]() mutable {
            job->answer(std::move(result), ec);
        });
    }

    static constexpr std::chrono::seconds idle_exit{5};

    std::mutex m_;
    std::condition_variable cv_;
    std::deque<std::shared_ptr<lookup>> queue_;
    std::size_t threads_ = 0;
    std::size_t idle_ = 0;
    std::size_t max_threads_ = default_resolver_threads;
};

std::atomic<resolver_pool*> the_pool{nullptr};
std::atomic<std::size_t> wanted_threads{default_resolver_threads};

// A forked child has none of the parent's threads: it starts a pool of its own (the parent's,
// whose mutex may have been held at the fork, is left alone).
void forget_pool_in_child() { the_pool.store(nullptr); }

resolver_pool& pool() {
    if (auto* p = the_pool.load(std::memory_order_acquire)) return *p;
    static const bool registered = [] {
        ::pthread_atfork(nullptr, nullptr, &forget_pool_in_child);
        return true;
    }();
    (void)registered;
    // No lock to create it, so that a child forked at any moment can make its own.
    auto* fresh = new resolver_pool;  // never deleted: see resolver_pool
    fresh->set_max(wanted_threads.load());
    resolver_pool* expected = nullptr;
    if (the_pool.compare_exchange_strong(expected, fresh, std::memory_order_acq_rel)) return *fresh;
    delete fresh;  // another thread made one first
    return *expected;
}

}  // namespace
}  // namespace detail

}  // namespace sock

namespace sock SOCK_API {

getaddrinfo_awaiter::getaddrinfo_awaiter(std::string host, std::uint16_t port, sock::family fam,
                                         sock::kind type, int flags, timeout_t timeout,
                                         std::error_code* ec)
    : host_(std::move(host)), port_(port), family_(fam), type_(type), flags_(flags),
      timeout_(timeout), ec_out_(ec) {
    if (timeout_ && timeout_->count() < 0)
        throw std::invalid_argument("async_getaddrinfo: timeout must be >= 0");
    alarm_.self = this;
}

getaddrinfo_awaiter::~getaddrinfo_awaiter() { detach(); }

bool getaddrinfo_awaiter::await_ready() {
    // A numeric host (or none, with AI_PASSIVE) never blocks: answer it here, without a thread.
    result_ = getaddrinfo(host_, port_, family_, type_, flags_ | AI_NUMERICHOST | AI_NUMERICSERV,
                          ec_);
    if (!ec_ || ec_ != std::error_code(EAI_NONAME, gai_category())) return true;
    ec_.clear();
    if (timeout_ && timeout_->count() == 0) {  // a name takes time, and none was given
        ec_ = timeout_error();
        return true;
    }
    return false;
}

bool getaddrinfo_awaiter::suspend(std::coroutine_handle<> h, detail::cancel_state* cancel) {
    auto* loop = event_loop::current();
    if (loop == nullptr)
        throw std::logic_error("sock::async_getaddrinfo: this thread has no event_loop");
    if (cancel != nullptr && cancel->requested) {
        cancel->requested = false;  // one cancellation fails one wait
        ec_ = std::make_error_code(std::errc::operation_canceled);
        return false;
    }
    auto job = std::make_shared<detail::lookup>();
    job->host = host_;
    job->port = port_;
    job->fam = family_;
    job->type = type_;
    job->flags = flags_;
    job->loop = loop;
    job->waiting = this;
    detail::pool().submit(job);  // throws (nothing started) when no thread can be made
    job_ = std::move(job);
    loop_ = loop;
    waiter_ = h;
    if (timeout_) {
        alarm_.fire = [](timer& t) { static_cast<alarm&>(t).self->give_up(timeout_error()); };
        loop->start(alarm_, *timeout_);
    }
    if (cancel != nullptr) {
        cancel_ = cancel;
        cancel->set(&on_task_cancel, this);
    }
    return true;
}

std::vector<addrinfo> getaddrinfo_awaiter::await_resume() {
    if (ec_out_ != nullptr) {
        *ec_out_ = ec_;
        return ec_ ? std::vector<addrinfo>{} : std::move(result_);
    }
    if (ec_) throw_error(ec_, "getaddrinfo " + address(host_, port_).to_string());
    return std::move(result_);
}

void getaddrinfo_awaiter::detach() noexcept {
    if (job_) std::exchange(job_, nullptr)->drop();
    if (loop_ != nullptr && alarm_.armed()) loop_->cancel(alarm_);
    if (cancel_ != nullptr) std::exchange(cancel_, nullptr)->clear(this);
}

void getaddrinfo_awaiter::deliver(std::vector<addrinfo> result, std::error_code ec) noexcept {
    detach();
    result_ = std::move(result);
    ec_ = ec;
    std::exchange(waiter_, nullptr).resume();
}

void getaddrinfo_awaiter::give_up(std::error_code why) noexcept {
    detach();
    ec_ = why;
    std::exchange(waiter_, nullptr).resume();
}

void getaddrinfo_awaiter::on_task_cancel(void* self) noexcept {
    auto& a = *static_cast<getaddrinfo_awaiter*>(self);
    a.cancel_->requested = false;  // one cancellation fails one wait
    a.cancel_ = nullptr;
    a.give_up(std::make_error_code(std::errc::operation_canceled));
}

getaddrinfo_awaiter async_getaddrinfo(std::string host, std::uint16_t port, sock::family fam,
                                      sock::kind type, int flags, timeout_t timeout) {
    return {std::move(host), port, fam, type, flags, timeout, nullptr};
}

getaddrinfo_awaiter async_getaddrinfo(std::string host, std::uint16_t port, sock::family fam,
                                      sock::kind type, int flags, timeout_t timeout,
                                      std::error_code& ec) {
    return {std::move(host), port, fam, type, flags, timeout, &ec};
}

void set_resolver_threads(std::size_t n) {
    if (n == 0) throw std::invalid_argument("set_resolver_threads: n must be >= 1");
    detail::wanted_threads.store(n);
    if (auto* p = detail::the_pool.load()) p->set_max(n);
}

}  // namespace sock
