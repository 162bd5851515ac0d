#pragma once

#include <sock/export.hpp>

#include <sys/epoll.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
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

namespace detail {
struct timer_list;
}  // namespace detail

/// A one-shot deadline that its owner embeds; starting and cancelling never allocate. The loop
/// points at an armed timer: cancel it before destroying it.
struct timer {
    using clock = std::chrono::steady_clock;
    /// Called on the loop's thread when the deadline passes; the timer is disarmed first.
    void (*fire)(timer&) = nullptr;
    /// If set, event_loop::cancel_all disarms this timer and calls on_cancel instead of fire,
    /// so that whoever waits on it unwinds (graceful stop); timers without it stay armed.
    void (*on_cancel)(timer&) = nullptr;

    /// True from start until it fires or is cancelled.
    bool armed() const noexcept { return list_ != nullptr || heap_index_ != unplaced; }

private:
    friend class event_loop;
    static constexpr std::uint32_t unplaced = UINT32_MAX;
    clock::time_point deadline_{};
    std::uint64_t seq_ = 0;  // start order: breaks deadline ties, and marks starts during a pass
    timer* prev_ = nullptr;
    timer* next_ = nullptr;
    detail::timer_list* list_ = nullptr;   // set while in a duration's list
    std::uint32_t heap_index_ = unplaced;  // set while in the heap
    std::uint32_t cancel_index_ = unplaced;  // set while in cancel_all's batch
};

namespace detail {
/// Timers of one duration expire in the order they start: a FIFO list, O(1) start and cancel.
struct timer_list {
    std::chrono::nanoseconds duration{};
    timer* head = nullptr;
    timer* tail = nullptr;
    std::uint64_t last_start = 0;  // the least recently started empty list is recycled first
};
}  // namespace detail

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

    /// Runs until stop(); dispatches events, then due timers, then posted work, on this thread.
    /// An exception from a handler, timer or posted function propagates out of run(); the
    /// posted functions after the one that threw stay queued, in order, for the next run().
    void run();
    /// Makes run() return after the current iteration; safe from any thread.
    void stop();
    /// Runs fn once on the loop's thread soon, in posting order; safe from any thread.
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
    /// Graceful stop: calls on_cancel on every watched handler, then disarms every armed timer
    /// that has an on_cancel and calls it. Timers started by those calls are left armed; a
    /// timer cancelled or restarted by an earlier call is skipped. A nested call from a timer's
    /// on_cancel only reaches the handlers.
    void cancel_all();
    /// Number of descriptors watched.
    std::size_t watched() const noexcept { return watched_; }

    /// Arms t to fire `after` from now (from the time this iteration began), restarting it if
    /// armed; a timer started while timers fire waits for the next pass, even if already due.
    void start(timer& t, std::chrono::nanoseconds after);
    /// Disarms t if armed.
    void cancel(timer& t) noexcept;
    /// What the timers hold now, cheap to read: armed timers, duration lists holding some,
    /// and the heap's reserved slots (for tests and metrics).
    struct timer_usage {
        std::size_t armed = 0;
        std::size_t lists = 0;
        std::size_t heap_capacity = 0;
    };
    timer_usage timers() const noexcept;
    /// The time this iteration began; cheaper than clock::now() and the base for timers.
    clock::time_point now() const noexcept { return now_; }

private:
    void check_thread(const char* what) const noexcept;
    void wake() noexcept;
    void run_posted();
    void fire_timers();
    int next_timeout_ms() const noexcept;
    static bool before(const timer& a, const timer& b) noexcept;
    timer* earliest() const noexcept;
    detail::timer_list* list_for(std::chrono::nanoseconds after) noexcept;
    void heap_push(timer& t);
    void heap_erase(std::uint32_t i) noexcept;
    void heap_up(std::uint32_t i) noexcept;
    void heap_down(std::uint32_t i) noexcept;
    void heap_place(timer* t, std::uint32_t i) noexcept;

    std::thread::id owner_;
    int epfd_ = -1;
    int wakefd_ = -1;
    bool stopping_ = false;
    std::vector<io_handler*> handlers_;  // indexed by fd, as Redis's ae does
    std::size_t watched_ = 0;
    std::vector<::epoll_event> fired_;
    // Recurring durations (a server's few timeouts) get a list each, O(1); once every list is
    // taken, other durations go to a binary heap, O(log n). Both are bounded by what is armed.
    static constexpr std::size_t max_lists = 8;
    std::array<detail::timer_list, max_lists> lists_{};
    std::size_t lists_used_ = 0;  // lists_[0, lists_used_) have been given a duration
    std::vector<timer*> heap_;    // earliest (deadline, seq) first
    std::uint64_t next_seq_ = 0;
    std::size_t armed_ = 0;
    std::vector<timer*> canceling_;  // cancel_all's batch; cancel() clears an entry
    bool canceling_timers_ = false;
    clock::time_point now_;

    std::mutex posted_mutex_;
    std::vector<std::function<void()>> posted_;
    std::vector<std::function<void()>> running_;
    bool stop_requested_ = false;  // guarded by posted_mutex_
};

}  // namespace sock
