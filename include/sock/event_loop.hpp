#pragma once

#include <sock/export.hpp>

#include <sys/epoll.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace sock SOCK_API {

/// Receives readiness events (EPOLLIN, EPOLLOUT, ...) for one descriptor.
class io_handler {
public:
    /// Called on the loop's thread; may be spurious, so handlers retry and accept EAGAIN.
    virtual void on_io(std::uint32_t events) = 0;
    /// Called by event_loop::cancel_all (graceful stop): fail pending operations, wake waiters.
    virtual void on_cancel() {}

protected:
    ~io_handler() = default;
};

/// A one-shot deadline that its owner embeds; starting and cancelling never allocate.
struct timer {
    using clock = std::chrono::steady_clock;
    /// Called on the loop's thread when the deadline passes; the timer is disarmed first.
    void (*fire)(timer&) = nullptr;

    bool armed() const noexcept { return list_ != nullptr; }

private:
    friend class event_loop;
    clock::time_point deadline_{};
    timer* prev_ = nullptr;
    timer* next_ = nullptr;
    struct timer_list* list_ = nullptr;
};

/// Timers of one duration expire in the order they start, so each duration keeps a FIFO list:
/// O(1) start and cancel. The next deadline is the earliest head, O(distinct durations).
struct timer_list {
    std::chrono::nanoseconds duration{};
    timer* head = nullptr;
    timer* tail = nullptr;
};

/// An epoll event loop: descriptors and their handlers, timers, and work posted from other
/// threads. One loop per thread: the thread that constructs a loop owns it, and loop-only
/// methods abort when called from any other thread.
class event_loop {
public:
    using clock = std::chrono::steady_clock;

    /// Creates the loop for this thread; throws std::logic_error if the thread has one.
    event_loop();
    ~event_loop();
    event_loop(const event_loop&) = delete;
    event_loop& operator=(const event_loop&) = delete;

    /// The loop this thread owns, or nullptr.
    static event_loop* current() noexcept;

    /// Runs until stop(); dispatches events, timers and posted work on this thread.
    void run();
    /// Makes run() return after the current iteration; safe from any thread.
    void stop();
    /// Runs fn on the loop's thread soon; safe from any thread.
    void post(std::function<void()> fn);
    bool in_loop_thread() const noexcept { return std::this_thread::get_id() == owner_; }

    /// Watches fd for events (EPOLLIN, EPOLLOUT, EPOLLET...); the loop does not own fd or h.
    void add(int fd, std::uint32_t events, io_handler& h);
    /// Changes the events watched on fd.
    void modify(int fd, std::uint32_t events);
    /// Points fd's events at another handler (when the handler object moves).
    void rebind(int fd, io_handler& h) noexcept;
    /// Stops watching fd (EPOLL_CTL_DEL).
    void remove(int fd) noexcept;
    /// Forgets fd without a system call, for a descriptor about to be closed (close removes
    /// it from epoll as long as no duplicate of it stays open).
    void forget(int fd) noexcept;
    /// Calls on_cancel on every watched handler (for graceful stop).
    void cancel_all();
    /// Number of descriptors watched.
    std::size_t watched() const noexcept { return watched_; }

    /// Arms t to fire `after` from now (from the time this iteration began).
    void start(timer& t, std::chrono::nanoseconds after);
    /// Disarms t if armed.
    void cancel(timer& t) noexcept;
    /// The time this iteration began; cheaper than clock::now() and the base for timers.
    clock::time_point now() const noexcept { return now_; }

private:
    void check_thread(const char* what) const noexcept;
    void run_posted();
    void fire_timers();
    int next_timeout_ms() const noexcept;

    std::thread::id owner_;
    int epfd_ = -1;
    int wakefd_ = -1;
    bool stopping_ = false;
    std::vector<io_handler*> handlers_;  // indexed by fd, as Redis's ae does
    std::size_t watched_ = 0;
    std::vector<::epoll_event> fired_;
    std::vector<std::unique_ptr<timer_list>> timers_;  // one per distinct duration; few in practice
    clock::time_point now_;

    std::mutex posted_mutex_;
    std::vector<std::function<void()>> posted_;
    std::vector<std::function<void()>> running_;
    bool stop_requested_ = false;  // guarded by posted_mutex_
};

}  // namespace sock
