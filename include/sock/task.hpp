#pragma once

#include <sock/export.hpp>

#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace sock SOCK_API {

namespace detail {

/// Coroutine frames come from per-thread free lists, so a connection costs no malloc.
void* allocate_frame(std::size_t size);
void free_frame(void* p, std::size_t size) noexcept;

}  // namespace detail

/// Called when a spawned task ends; ex holds what it threw, if anything.
using done_fn = void (*)(void* context, std::exception_ptr ex) noexcept;

template <class T = void>
class task;

class task_set;

namespace detail {

/// Cancellation of one chain of tasks (a task and the tasks it awaits, down to the one that
/// is suspended): the library awaitable it waits in registers how to wake it, and request()
/// wakes it with operation_canceled. Awaitables that find it requested fail at once.
struct cancel_state {
    bool requested = false;
    void (*wake)(void*) noexcept = nullptr;
    void* waiter = nullptr;

    /// Marks the chain cancelled and wakes what it waits in, if anything.
    void request() noexcept {
        requested = true;
        if (auto* fn = std::exchange(wake, nullptr)) fn(std::exchange(waiter, nullptr));
    }
    /// Called by an awaitable as it suspends.
    void set(void (*fn)(void*) noexcept, void* w) noexcept {
        wake = fn;
        waiter = w;
    }
    /// Called by an awaitable as it resumes or is destroyed.
    void clear(const void* w) noexcept {
        if (waiter == w) {
            wake = nullptr;
            waiter = nullptr;
        }
    }
};

struct promise_base {
    std::coroutine_handle<> continuation = std::noop_coroutine();
    std::exception_ptr exception;
    bool detached = false;
    done_fn on_done = nullptr;
    void* done_context = nullptr;
    // Membership of a task_set (spawned tasks only): an intrusive list, so joining costs
    // no allocation.
    task_set* set = nullptr;
    promise_base* set_prev = nullptr;
    promise_base* set_next = nullptr;
    std::coroutine_handle<> self;
    // The chain's cancellation: a spawned task's own, inherited by the tasks it awaits.
    cancel_state* cancel = nullptr;
    cancel_state own_cancel;

    static void* operator new(std::size_t size) { return allocate_frame(size); }
    static void operator delete(void* p, std::size_t size) noexcept { free_frame(p, size); }

    std::suspend_always initial_suspend() noexcept { return {}; }

    struct final_awaiter {
        bool await_ready() noexcept { return false; }
        template <class P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
            promise_base& p = h.promise();
            if (!p.detached) return p.continuation;
            // A spawned task owns its frame: free it, then report how it ended, then wake
            // whoever joins its set if it was the last.
            auto joiner = leave_set(p);
            auto ex = std::move(p.exception);
            auto fn = p.on_done;
            auto* ctx = p.done_context;
            h.destroy();
            report(fn, ctx, std::move(ex));
            return joiner ? joiner : std::noop_coroutine();
        }
        void await_resume() noexcept {}
    };
    final_awaiter final_suspend() noexcept { return {}; }
    void unhandled_exception() noexcept { exception = std::current_exception(); }

    static void report(done_fn fn, void* ctx, std::exception_ptr ex) noexcept;
    /// Takes p out of its set; returns the set's joiner to resume when p was the last.
    static std::coroutine_handle<> leave_set(promise_base& p) noexcept;
};

/// The cancellation state of the coroutine behind h, if it is a sock::task.
template <class P>
cancel_state* cancel_of(std::coroutine_handle<P> h) noexcept {
    if constexpr (std::is_base_of_v<promise_base, P>) return h.promise().cancel;
    else return nullptr;
}

template <class T>
struct promise final : promise_base {
    std::optional<T> value;
    task<T> get_return_object() noexcept;
    template <class U>
    void return_value(U&& v) {
        value.emplace(std::forward<U>(v));
    }
    T take() {
        if (exception) std::rethrow_exception(exception);
        return std::move(*value);
    }
};

template <>
struct promise<void> final : promise_base {
    task<void> get_return_object() noexcept;
    void return_void() noexcept {}
    void take() {
        if (exception) std::rethrow_exception(exception);
    }
};

}  // namespace detail

/// A lazy coroutine: it starts when awaited (or spawned) and resumes its awaiter when done.
/// Exceptions travel to the awaiter. Move-only; destroying an unstarted task frees it.
template <class T>
class [[nodiscard]] task {
public:
    using promise_type = detail::promise<T>;
    using handle = std::coroutine_handle<promise_type>;

    task() noexcept = default;
    explicit task(handle h) noexcept : h_(h) {}
    task(task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
    task& operator=(task&& o) noexcept {
        if (this != &o) {
            if (h_) h_.destroy();
            h_ = std::exchange(o.h_, {});
        }
        return *this;
    }
    ~task() {
        if (h_) h_.destroy();
    }

    bool await_ready() const noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> awaiter) noexcept {
        h_.promise().continuation = awaiter;
        // The awaiting task's cancellation reaches this one, unless it has its own scope
        // (wait_for).
        if (h_.promise().cancel == nullptr) h_.promise().cancel = detail::cancel_of(awaiter);
        return h_;
    }
    T await_resume() { return h_.promise().take(); }

    /// Gives up the frame (for spawn); the task is empty afterwards.
    handle release() noexcept { return std::exchange(h_, {}); }
    /// Runs this task under its own cancellation (wait_for's), not its awaiter's. Before it
    /// starts only.
    void set_cancel(detail::cancel_state* c) noexcept { h_.promise().cancel = c; }

private:
    handle h_;
};

namespace detail {
template <class T>
task<T> promise<T>::get_return_object() noexcept {
    return task<T>(std::coroutine_handle<promise<T>>::from_promise(*this));
}
inline task<void> promise<void>::get_return_object() noexcept {
    return task<void>(std::coroutine_handle<promise<void>>::from_promise(*this));
}
}  // namespace detail

/// Starts t now, on this thread, and lets it run on its own; its frame is freed when it ends.
/// on_done (if given) learns how it ended; otherwise an escaped exception is printed to stderr.
inline void spawn(task<void> t, done_fn on_done = nullptr, void* context = nullptr) {
    auto h = t.release();
    if (!h) return;
    h.promise().detached = true;
    h.promise().on_done = on_done;
    h.promise().done_context = context;
    h.promise().cancel = &h.promise().own_cancel;
    h.resume();
}

/// Spawned tasks that can be destroyed together: what a server holds of its connections, so
/// that none outlives it. A task leaves the set when it ends. One thread only (its loop's).
class task_set {
public:
    task_set() = default;
    task_set(const task_set&) = delete;
    task_set& operator=(const task_set&) = delete;
    /// Destroys what is left (see destroy_all).
    ~task_set() {
        if (alive_ != nullptr) *alive_ = false;
        std::coroutine_handle<> joiner;
        destroy_members(joiner);
    }

    /// Like sock::spawn, and the task joins this set until it ends.
    void spawn(task<void> t, done_fn on_done = nullptr, void* context = nullptr) {
        auto h = t.release();
        if (!h) return;
        auto& p = h.promise();
        p.detached = true;
        p.on_done = on_done;
        p.done_context = context;
        p.set = this;
        p.self = h;
        p.cancel = &p.own_cancel;
        p.set_next = head_;
        if (head_ != nullptr) head_->set_prev = &p;
        head_ = &p;
        ++size_;
        h.resume();
    }

    /// Cancels every task here: each wakes with operation_canceled in the library awaitable
    /// it waits in (recv, sleep, ...), and any it awaits later fails at once, so it unwinds
    /// through its own code (asyncio's Task.cancel for each).
    void cancel_all() noexcept;

    class join_awaiter;
    /// `co_await set.join()`: waits until every task here has ended (at once when none is
    /// left), as a wait group or asyncio.TaskGroup's end does; one joiner at a time. Cancelling
    /// the joining task ends the wait with operation_canceled; the tasks go on.
    join_awaiter join() noexcept;

    /// Tasks spawned here that have not ended.
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }

    /// Destroys every task still suspended: each frame's locals (sockets, awaiters, the tasks
    /// it awaits) are destroyed innermost first, as when an exception unwinds, but no code of
    /// the task runs and on_done is not called. For tasks that ignored cancellation. A joiner
    /// is resumed afterwards. Returns how many were destroyed.
    std::size_t destroy_all() noexcept;

private:
    friend struct detail::promise_base;
    /// destroy_all without waking the joiner, which it hands back (the destructor drops it).
    std::size_t destroy_members(std::coroutine_handle<>& joiner) noexcept;
    detail::promise_base* head_ = nullptr;
    std::size_t size_ = 0;
    bool* alive_ = nullptr;  // set while cancel_all runs: a woken task may destroy this set
    join_awaiter* joiner_ = nullptr;
};

/// What co_await task_set::join() waits on.
class task_set::join_awaiter {
public:
    explicit join_awaiter(task_set& s) noexcept : set_(&s) {}
    join_awaiter(const join_awaiter&) = delete;
    join_awaiter& operator=(const join_awaiter&) = delete;
    ~join_awaiter() { leave(); }

    bool await_ready() const noexcept { return set_->empty(); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        return suspend(h, detail::cancel_of(h));
    }
    void await_resume() const;

private:
    friend class task_set;
    friend struct detail::promise_base;
    bool suspend(std::coroutine_handle<> h, detail::cancel_state* cancel);
    /// Stops waiting: out of the set and of the task's cancellation; returns the waiter.
    std::coroutine_handle<> leave() noexcept;
    static void on_task_cancel(void* self) noexcept;

    task_set* set_;
    std::coroutine_handle<> waiter_;
    detail::cancel_state* cancel_ = nullptr;
    bool canceled_ = false;
};

inline task_set::join_awaiter task_set::join() noexcept { return join_awaiter(*this); }

}  // namespace sock
