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

namespace sock SOCK_API {

/// `co_await sock::sleep(100ms)`: resumes on this thread's loop after the duration. Wakes
/// early with operation_canceled (a sock::error) when the loop cancels everything (a
/// server's stop); a sleep destroyed while pending (its task destroyed) disarms itself.
class sleep {
public:
    explicit sleep(std::chrono::nanoseconds d) : duration_(d) {}
    sleep(const sleep&) = delete;
    sleep& operator=(const sleep&) = delete;
    ~sleep() {
        if (loop_ != nullptr && node_.armed()) loop_->cancel(node_);
    }
    bool await_ready() const noexcept { return duration_.count() <= 0; }
    void await_suspend(std::coroutine_handle<> h) {
        auto* loop = event_loop::current();
        if (loop == nullptr) throw std::logic_error("sock::sleep: this thread has no event_loop");
        loop_ = loop;
        node_.waiter = h;
        node_.fire = [](timer& t) { static_cast<node&>(t).waiter.resume(); };
        node_.on_cancel = [](timer& t) {
            auto& n = static_cast<node&>(t);
            n.canceled = true;
            n.waiter.resume();
        };
        loop->start(node_, duration_);
    }
    void await_resume() const {
        if (node_.canceled)
            throw_error(std::make_error_code(std::errc::operation_canceled), "sleep");
    }

private:
    struct node : timer {
        std::coroutine_handle<> waiter;
        bool canceled = false;
    };
    std::chrono::nanoseconds duration_;
    event_loop* loop_ = nullptr;
    node node_;
};

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
