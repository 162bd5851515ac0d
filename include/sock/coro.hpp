#pragma once

#include <sock/event_loop.hpp>
#include <sock/export.hpp>
#include <sock/task.hpp>

#include <chrono>
#include <coroutine>
#include <exception>
#include <optional>
#include <stdexcept>

namespace sock SOCK_API {

/// `co_await sock::sleep(100ms)`: resumes on this thread's loop after the duration.
class sleep {
public:
    explicit sleep(std::chrono::nanoseconds d) : duration_(d) {}
    bool await_ready() const noexcept { return duration_.count() <= 0; }
    void await_suspend(std::coroutine_handle<> h) {
        auto* loop = event_loop::current();
        if (loop == nullptr) throw std::logic_error("sock::sleep: this thread has no event_loop");
        node_.waiter = h;
        node_.fire = [](timer& t) { static_cast<node&>(t).waiter.resume(); };
        loop->start(node_, duration_);
    }
    void await_resume() const noexcept {}

private:
    struct node : timer {
        std::coroutine_handle<> waiter;
    };
    std::chrono::nanoseconds duration_;
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
}  // namespace detail

/// Runs loop until t finishes and returns its result (or rethrows); like Python's asyncio.run.
template <class T>
T run(event_loop& loop, task<T> t) {
    std::exception_ptr ex;
    if constexpr (std::is_void_v<T>) {
        spawn(detail::run_and_stop_void(std::move(t), ex, loop));
        loop.run();
        if (ex) std::rethrow_exception(ex);
    } else {
        std::optional<T> out;
        spawn(detail::run_and_stop(std::move(t), out, ex, loop));
        loop.run();
        if (ex) std::rethrow_exception(ex);
        return std::move(*out);
    }
}

}  // namespace sock
