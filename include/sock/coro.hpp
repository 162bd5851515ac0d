#pragma once

#include <sock/error.hpp>
#include <sock/event_loop.hpp>
#include <sock/export.hpp>
#include <sock/task.hpp>

#include <chrono>
#include <coroutine>
#include <exception>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace sock SOCK_API {

/// `co_await sock::sleep(100ms)`: resumes on this thread's loop after the duration. As in
/// asyncio, it always suspends: sleep(0ns) yields to the loop, which first runs the timers
/// already due (an async_event's wake-ups among them). Wakes early with operation_canceled
/// (a sock::error) when its task is cancelled or the loop cancels everything (a server's
/// stop); a sleep destroyed while pending disarms itself. A negative duration counts as 0.
class sleep {
public:
    explicit sleep(std::chrono::nanoseconds d) : duration_(d.count() < 0 ? d.zero() : d) {}
    sleep(const sleep&) = delete;
    sleep& operator=(const sleep&) = delete;
    ~sleep() {
        if (loop_ != nullptr && node_.armed()) loop_->cancel(node_);
        if (node_.task_cancel != nullptr) node_.task_cancel->clear(&node_);
    }
    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        auto* loop = event_loop::current();
        if (loop == nullptr) throw std::logic_error("sock::sleep: this thread has no event_loop");
        auto* cancel = detail::cancel_of(h);
        if (cancel != nullptr && cancel->requested) {
            cancel->requested = false;  // one cancellation fails one wait
            node_.canceled = true;
            return false;
        }
        loop_ = loop;
        node_.loop = loop;
        node_.waiter = h;
        node_.fire = [](timer& t) { static_cast<node&>(t).wake(false); };
        node_.on_cancel = [](timer& t) { static_cast<node&>(t).wake(true); };
        loop->start(node_, duration_);
        if (cancel != nullptr) {
            node_.task_cancel = cancel;
            cancel->set(&node::on_task_cancel, &node_);
        }
        return true;
    }
    void await_resume() const {
        if (node_.canceled)
            throw_error(std::make_error_code(std::errc::operation_canceled), "sleep");
    }

private:
    struct node : timer {
        std::coroutine_handle<> waiter;
        detail::cancel_state* task_cancel = nullptr;
        event_loop* loop = nullptr;
        bool canceled = false;
        void wake(bool cancel) {
            if (task_cancel != nullptr) std::exchange(task_cancel, nullptr)->clear(this);
            canceled = cancel;
            waiter.resume();
        }
        static void on_task_cancel(void* p) noexcept {
            auto& n = *static_cast<node*>(p);
            std::exchange(n.task_cancel, nullptr)->requested = false;
            if (n.loop != nullptr) n.loop->cancel(n);
            n.canceled = true;
            n.waiter.resume();
        }
    };
    std::chrono::nanoseconds duration_;
    event_loop* loop_ = nullptr;
    node node_;
};

/// asyncio.Event for the tasks of one loop: `co_await ev.wait()` suspends until set(). set()
/// wakes every waiter on the loop's next turn, never inside set() itself, so that whoever sets
/// it (walking a list, say) is not re-entered; clear() makes later waits suspend again. A wait
/// fails with operation_canceled (a sock::error) when its task is cancelled or the loop cancels
/// everything. One thread only, as its loop.
class async_event {
public:
    class awaiter;

    async_event() = default;
    async_event(const async_event&) = delete;
    async_event& operator=(const async_event&) = delete;
    /// Waiters must be gone first (their frames destroyed or resumed).
    ~async_event() = default;

    void set() noexcept;
    void clear() noexcept { is_set_ = false; }
    bool is_set() const noexcept { return is_set_; }
    /// `co_await ev.wait()`: at once if set, else until set() (see above).
    awaiter wait() noexcept;

private:
    void unlink(awaiter* w) noexcept;

    bool is_set_ = false;
    awaiter* waiting_ = nullptr;
};

/// What co_await async_event::wait() waits on.
class async_event::awaiter {
public:
    explicit awaiter(async_event& e) noexcept : ev_(&e) {
        node_.self = this;
        node_.fire = [](timer& t) { static_cast<node&>(t).self->wake(false); };
        node_.on_cancel = [](timer& t) { static_cast<node&>(t).self->wake(true); };
    }
    awaiter(const awaiter&) = delete;
    awaiter& operator=(const awaiter&) = delete;
    ~awaiter() {
        if (listed_) ev_->unlink(this);
        if (loop_ != nullptr && node_.armed()) loop_->cancel(node_);
        if (cancel_ != nullptr) cancel_->clear(this);
    }

    bool await_ready() const noexcept { return ev_->is_set_; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        auto* loop = event_loop::current();
        if (loop == nullptr)
            throw std::logic_error("sock::async_event::wait: this thread has no event_loop");
        auto* cancel = detail::cancel_of(h);
        if (cancel != nullptr && cancel->requested) {
            cancel->requested = false;  // one cancellation fails one wait
            canceled_ = true;
            return false;
        }
        loop_ = loop;
        waiter_ = h;
        next_ = ev_->waiting_;
        ev_->waiting_ = this;
        listed_ = true;
        if (cancel != nullptr) {
            cancel_ = cancel;
            cancel->set(&on_task_cancel, this);
        }
        return true;
    }
    void await_resume() const {
        if (canceled_) throw_error(std::make_error_code(std::errc::operation_canceled), "wait");
    }

private:
    friend class async_event;
    struct node : timer {
        awaiter* self = nullptr;
    };

    void wake(bool canceled) noexcept {
        if (listed_) ev_->unlink(this);
        if (cancel_ != nullptr) std::exchange(cancel_, nullptr)->clear(this);
        canceled_ = canceled;
        std::exchange(waiter_, {}).resume();
    }
    static void on_task_cancel(void* p) noexcept {
        auto& a = *static_cast<awaiter*>(p);
        std::exchange(a.cancel_, nullptr)->requested = false;
        if (a.node_.armed()) a.loop_->cancel(a.node_);
        a.wake(true);
    }

    async_event* ev_;
    awaiter* next_ = nullptr;
    bool listed_ = false;
    bool canceled_ = false;
    event_loop* loop_ = nullptr;
    std::coroutine_handle<> waiter_;
    detail::cancel_state* cancel_ = nullptr;
    node node_;
};

inline async_event::awaiter async_event::wait() noexcept { return awaiter(*this); }

inline void async_event::set() noexcept {
    is_set_ = true;
    while (waiting_ != nullptr) {
        awaiter* w = waiting_;
        waiting_ = w->next_;
        w->next_ = nullptr;
        w->listed_ = false;
        w->loop_->start(w->node_, std::chrono::nanoseconds(0));
    }
}

inline void async_event::unlink(awaiter* w) noexcept {
    for (awaiter** p = &waiting_; *p != nullptr; p = &(*p)->next_) {
        if (*p == w) {
            *p = w->next_;
            break;
        }
    }
    w->next_ = nullptr;
    w->listed_ = false;
}

namespace detail {
template <class T>
task<void> run_and_stop(task<T> t, std::optional<T>& out, std::exception_ptr& ex, event_loop& loop) {
    try {
        out.emplace(co_await std::move(t));
    } catch (...) {
        ex = std::current_exception();
    }
    loop.stop();
}
inline task<void> run_and_stop_void(task<void> t, std::exception_ptr& ex, event_loop& loop) {
    try {
        co_await std::move(t);
    } catch (...) {
        ex = std::current_exception();
    }
    loop.stop();
}

// Runs helper (which stops loop when it ends) to its end. The frame is ours, not spawned:
// when the loop stops early it is destroyed here, with the task it awaits, before run's
// locals it refers to go away.
inline void run_to_end(event_loop& loop, task<void> helper) {
    auto h = helper.release();
    struct owner {
        std::coroutine_handle<> h;
        ~owner() { h.destroy(); }
    } own{h};
    h.resume();
    loop.run();
    if (!h.done())
        throw std::runtime_error("sock::run: the event loop stopped before the task finished");
}
}  // namespace detail

namespace detail {

// Awaits t under its own cancellation, scope; a cancellation of the awaiting task is passed
// on to scope, so it reaches whatever t waits in.
template <class T>
struct scoped_await {
    task<T> t;
    cancel_state* scope;
    cancel_state* outer = nullptr;

    scoped_await(task<T> task_, cancel_state* s) : t(std::move(task_)), scope(s) {}
    scoped_await(const scoped_await&) = delete;
    scoped_await& operator=(const scoped_await&) = delete;
    ~scoped_await() {
        if (outer != nullptr) outer->clear(this);
    }
    bool await_ready() const noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
        outer = cancel_of(h);
        if (outer != nullptr) {
            if (outer->requested) {
                outer->requested = false;
                scope->requested = true;
            } else {
                outer->set(&forward, this);
            }
        }
        t.set_cancel(scope);
        return t.await_suspend(h);
    }
    T await_resume() {
        if (outer != nullptr) outer->clear(this);
        return t.await_resume();
    }
    static void forward(void* p) noexcept {
        auto& self = *static_cast<scoped_await*>(p);
        self.outer->requested = false;
        self.scope->request();
    }
};

// wait_for's deadline: cancels the scope when it passes.
struct wait_alarm : timer {
    event_loop* loop;
    cancel_state* scope;
    bool expired = false;
    wait_alarm(event_loop& l, cancel_state& s) : loop(&l), scope(&s) {
        fire = [](timer& t) {
            auto& a = static_cast<wait_alarm&>(t);
            a.expired = true;
            a.scope->request();
        };
    }
    wait_alarm(const wait_alarm&) = delete;
    wait_alarm& operator=(const wait_alarm&) = delete;
    ~wait_alarm() { loop->cancel(*this); }
};

}  // namespace detail

/// `co_await sock::wait_for(task, 2s)`, asyncio's wait_for: runs t, and if it has not
/// finished when the timeout passes, cancels it: the library awaitable it waits in (recv,
/// sleep, ...) fails with operation_canceled, t unwinds, and sock::timeout ("wait_for: timed
/// out") is raised here. A t that catches the cancellation and returns normally has its
/// result returned. Cancelling the task that awaits wait_for cancels t too.
template <class T>
task<T> wait_for(task<T> t, std::chrono::nanoseconds timeout) {
    auto* loop = event_loop::current();
    if (loop == nullptr) throw std::logic_error("sock::wait_for: this thread has no event_loop");
    detail::cancel_state scope;
    detail::wait_alarm alarm(*loop, scope);
    loop->start(alarm, timeout);
    try {
        if constexpr (std::is_void_v<T>) {
            co_await detail::scoped_await<T>(std::move(t), &scope);
        } else {
            co_return co_await detail::scoped_await<T>(std::move(t), &scope);
        }
    } catch (const error& e) {
        if (alarm.expired && e.code() == std::errc::operation_canceled)
            throw_error(timeout_error(), "wait_for");
        throw;
    }
}

namespace detail {

// What when_all's children share with it; lives in when_all's frame, which outlives them
// (its task_set destroys any child left when the frame goes).
template <class T>
struct gather_state {
    using slot = std::conditional_t<std::is_void_v<T>, bool, std::optional<T>>;
    std::vector<slot> results;
    std::exception_ptr error;
    std::size_t remaining = 0;
    std::coroutine_handle<> waiter;
    task_set children;

    static void child_done(void* p, std::exception_ptr) noexcept {
        auto& st = *static_cast<gather_state*>(p);
        if (--st.remaining == 0 && st.waiter) std::exchange(st.waiter, {}).resume();
    }
};

template <class T>
task<void> gather_one(task<T> t, gather_state<T>& st, std::size_t i) {
    try {
        if constexpr (std::is_void_v<T>) {
            co_await std::move(t);
            st.results[i] = true;
        } else {
            st.results[i].emplace(co_await std::move(t));
        }
    } catch (...) {
        if (!st.error) {
            st.error = std::current_exception();
            st.children.cancel_all();  // the first error cancels the rest
        }
    }
}

// Waits until every child has ended; a cancellation of the waiting task cancels them all.
template <class T>
struct all_ended {
    gather_state<T>& st;
    cancel_state* outer = nullptr;
    explicit all_ended(gather_state<T>& s) : st(s) {}
    all_ended(const all_ended&) = delete;
    all_ended& operator=(const all_ended&) = delete;
    ~all_ended() {
        if (outer != nullptr) outer->clear(this);
    }
    bool await_ready() const noexcept { return st.remaining == 0; }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) noexcept {
        st.waiter = h;
        outer = cancel_of(h);
        if (outer != nullptr) {
            if (outer->requested) {
                outer->requested = false;
                st.children.cancel_all();  // may end them all and resume h: touch nothing after
                return;
            }
            outer->set(&forward, this);
        }
    }
    void await_resume() noexcept {
        if (outer != nullptr) outer->clear(this);
    }
    static void forward(void* p) noexcept {
        auto& self = *static_cast<all_ended*>(p);
        self.outer->requested = false;
        self.outer = nullptr;
        self.st.children.cancel_all();
    }
};

}  // namespace detail

/// Runs every task at once on this loop and waits for all (asyncio.gather, with TaskGroup's
/// rule for errors): the results in the tasks' order; the first exception cancels the
/// others, waits for them to unwind, and is rethrown. Cancelling the awaiting task cancels
/// them all. A vector of task<void> gives task<void>.
template <class T>
task<std::conditional_t<std::is_void_v<T>, void, std::vector<T>>> when_all(std::vector<task<T>> tasks) {
    detail::gather_state<T> st;
    st.results.resize(tasks.size());
    st.remaining = tasks.size();
    for (std::size_t i = 0; i < tasks.size(); ++i) {
        if (st.error) {  // one failed before all had started: the rest never start
            st.remaining -= tasks.size() - i;
            break;
        }
        st.children.spawn(detail::gather_one(std::move(tasks[i]), st, i),
                          &detail::gather_state<T>::child_done, &st);
    }
    co_await detail::all_ended<T>(st);
    if (st.error) std::rethrow_exception(st.error);
    if constexpr (!std::is_void_v<T>) {
        std::vector<T> out;
        out.reserve(st.results.size());
        for (auto& r : st.results) out.push_back(std::move(*r));
        co_return out;
    }
}

/// Runs loop until t finishes and returns its result (or rethrows); like Python's asyncio.run.
/// If the loop stops first (stop() from other code, or a stop requested before), t is
/// destroyed, its destructors run, and std::runtime_error is thrown, as asyncio's
/// "Event loop stopped before Future completed."
template <class T>
T run(event_loop& loop, task<T> t) {
    std::exception_ptr ex;
    if constexpr (std::is_void_v<T>) {
        detail::run_to_end(loop, detail::run_and_stop_void(std::move(t), ex, loop));
        if (ex) std::rethrow_exception(ex);
    } else {
        std::optional<T> out;
        detail::run_to_end(loop, detail::run_and_stop(std::move(t), out, ex, loop));
        if (ex) std::rethrow_exception(ex);
        return std::move(*out);
    }
}

}  // namespace sock
