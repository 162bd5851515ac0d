// Time limits and cancellation of tasks: sock::wait_for (asyncio's wait_for) and
// task_set::cancel_all, through every library awaitable a task can wait in.

#include "support.hpp"

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>

namespace {

using namespace std::chrono_literals;

using engine_test::witness;

/// What a task ended with: its value, or the text of what it threw.
template <class T>
struct outcome {
    std::optional<T> value;
    std::string error;
    std::error_code code;
};

template <class T>
outcome<T> run_catching(sock::event_loop& loop, sock::task<T> t) {
    outcome<T> o;
    try {
        o.value = sock::run(loop, std::move(t));
    } catch (const sock::error& e) {
        o.error = e.what();
        o.code = e.code();
    }
    return o;
}

sock::task<int> sleeps_then_answers(std::chrono::nanoseconds d, int* destroyed) {
    witness w(destroyed);
    co_await sock::sleep(d);
    co_return 7;
}

TEST(WaitFor, ReturnsTheResultWhenTheTaskIsInTime) {
    sock::event_loop loop;
    int destroyed = 0;
    auto o = run_catching(loop, sock::wait_for(sleeps_then_answers(1ms, &destroyed), 10s));
    EXPECT_EQ(o.value, 7);
    EXPECT_EQ(destroyed, 1);
    EXPECT_EQ(loop.timers().armed, 0u);  // the deadline is gone with the call
}

TEST(WaitFor, ASleepingTaskIsCancelledUnwindsAndTimeoutIsRaised) {
    sock::event_loop loop;
    int destroyed = 0;
    auto o = run_catching(loop, sock::wait_for(sleeps_then_answers(1h, &destroyed), 20ms));
    EXPECT_FALSE(o.value.has_value());
    EXPECT_EQ(o.error, "wait_for: timed out");
    EXPECT_EQ(o.code, std::errc::timed_out);
    EXPECT_EQ(destroyed, 1);
    EXPECT_EQ(loop.timers().armed, 0u);
}

TEST(WaitFor, ATaskWaitingInRecvIsCancelledAndTheSocketStaysUsable) {
    sock::event_loop loop;
    auto [a, b] = sock::socketpair();
    sock::async_socket conn(std::move(a), loop);
    conn.settimeout(std::nullopt);  // only wait_for bounds the wait
    auto reader = [](sock::async_socket& c) -> sock::task<std::string> { co_return co_await c.recv(100); };
    auto o = run_catching(loop, sock::wait_for(reader(conn), 20ms));
    EXPECT_EQ(o.error, "wait_for: timed out");
    b.sendall("later");
    EXPECT_EQ(sock::run(loop, sock::wait_for(reader(conn), 10s)), "later");
}

TEST(WaitFor, ItsOwnErrorsPassThrough) {
    sock::event_loop loop;
    EXPECT_THROW(sock::run(loop, sock::wait_for([]() -> sock::task<> {
                               co_await sock::sleep(1ms);
                               throw std::invalid_argument("mine");
                           }(),
                                                10s)),
                 std::invalid_argument);
    // A recv timeout of the task's own socket is its own sock::timeout, not wait_for's.
    auto [a, b] = sock::socketpair();
    sock::async_socket conn(std::move(a), loop);
    conn.settimeout(0.01);
    auto o = run_catching(loop, sock::wait_for([](sock::async_socket& c) -> sock::task<std::string> {
                              co_return co_await c.recv(100);
                          }(conn),
                                               10s));
    EXPECT_EQ(o.code, std::errc::timed_out);
    EXPECT_NE(o.error.find("recv"), std::string::npos) << o.error;
}

// The innermost deadline wins, and the outer one still bounds the whole.
TEST(WaitFor, Nested) {
    sock::event_loop loop;
    int destroyed = 0;
    auto inner_first = [](int* d) -> sock::task<int> {
        try {
            co_return co_await sock::wait_for(sleeps_then_answers(1h, d), 10ms);
        } catch (const sock::timeout&) {
            co_return -1;  // the inner limit passed; go on
        }
    };
    EXPECT_EQ(sock::run(loop, sock::wait_for(inner_first(&destroyed), 10s)), -1);
    auto outer_first = [](int* d) -> sock::task<int> {
        co_return co_await sock::wait_for(sleeps_then_answers(1h, d), 10s);
    };
    auto o = run_catching(loop, sock::wait_for(outer_first(&destroyed), 10ms));
    EXPECT_EQ(o.error, "wait_for: timed out");
    EXPECT_EQ(destroyed, 2);
    EXPECT_EQ(loop.timers().armed, 0u);
}

// A task that catches the cancellation and finishes anyway has its result returned, and a
// later wait of its own is not cancelled again: one cancellation, one failed wait.
TEST(WaitFor, ATaskThatHandlesTheCancellationReturnsItsResult) {
    sock::event_loop loop;
    auto stubborn = []() -> sock::task<int> {
        try {
            co_await sock::sleep(1h);
        } catch (const sock::error&) {
        }
        co_await sock::sleep(1ms);  // waits normally
        co_return 3;
    };
    EXPECT_EQ(sock::run(loop, sock::wait_for(stubborn(), 10ms)), 3);
}

// Spawned tasks are cancelled one by one or all together: each wakes with operation_canceled
// in whatever it waits in and unwinds through its own code.
TEST(TaskSetCancel, EveryAwaitableWakesWithOperationCanceled) {
    sock::event_loop loop;
    auto [a, b] = sock::socketpair();
    sock::async_socket conn(std::move(a), loop);
    conn.settimeout(std::nullopt);
    auto listener = sock::create_server({"127.0.0.1", 0});
    sock::async_socket server(std::move(listener), loop);
    server.settimeout(std::nullopt);
    std::vector<std::string> seen;
    auto waits = [](std::vector<std::string>& out, std::string name,
                    sock::task<> what) -> sock::task<> {
        try {
            co_await std::move(what);
            out.push_back(name + ": finished");
        } catch (const sock::error& e) {
            out.push_back(name + ": " + (e.code() == std::errc::operation_canceled ? "canceled" : e.what()));
        }
    };
    sock::task_set set;
    set.spawn(waits(seen, "sleep", []() -> sock::task<> { co_await sock::sleep(1h); }()));
    set.spawn(waits(seen, "recv", [](sock::async_socket& c) -> sock::task<> {
                        co_await c.recv(10);
                    }(conn)));
    set.spawn(waits(seen, "accept", [](sock::async_socket& s) -> sock::task<> {
                        co_await s.accept();
                    }(server)));
    EXPECT_EQ(set.size(), 3u);
    EXPECT_TRUE(seen.empty());
    set.cancel_all();
    EXPECT_EQ(set.size(), 0u);
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, (std::vector<std::string>{"accept: canceled", "recv: canceled",
                                              "sleep: canceled"}));
    EXPECT_EQ(loop.timers().armed, 0u);
    // The sockets are usable afterwards: cancelling a task is not closing its socket.
    b.sendall("x");
    EXPECT_EQ(sock::run(loop, [](sock::async_socket& c) -> sock::task<std::string> {
                  co_return co_await c.recv(10);
              }(conn)),
              "x");
}

// A task cancelled while it is not waiting in a library awaitable fails at its next one.
TEST(TaskSetCancel, ACancelRequestedBetweenWaitsFailsTheNextWait) {
    sock::event_loop loop;
    sock::task_set set;
    std::string result;
    set.spawn([](sock::event_loop& l, std::string& r) -> sock::task<> {
        co_await engine_test::yield_to{l};  // not a library awaitable: cancel finds no waiter
        try {
            co_await sock::sleep(1h);
            r = "slept";
        } catch (const sock::error& e) {
            r = e.what();
        }
        l.stop();
    }(loop, result));
    set.cancel_all();
    loop.run();
    EXPECT_EQ(result, "sleep: " + std::make_error_code(std::errc::operation_canceled).message());
}

// -- when_all -------------------------------------------------------------------------------

sock::task<int> after(std::chrono::milliseconds d, int v) {
    co_await sock::sleep(d);
    co_return v;
}

TEST(WhenAll, ResultsInTheTasksOrderWhateverOrderTheyEndIn) {
    sock::event_loop loop;
    std::vector<sock::task<int>> tasks;
    tasks.push_back(after(30ms, 1));
    tasks.push_back(after(10ms, 2));
    tasks.push_back([]() -> sock::task<int> { co_return 3; }());  // ends at once
    EXPECT_EQ(sock::run(loop, sock::when_all(std::move(tasks))), (std::vector<int>{1, 2, 3}));
    EXPECT_EQ(sock::run(loop, sock::when_all(std::vector<sock::task<int>>{})), std::vector<int>{});
}

// The first error cancels the others; they unwind (destructors run) before it is rethrown.
TEST(WhenAll, TheFirstErrorCancelsTheRestAndIsRethrown) {
    sock::event_loop loop;
    int destroyed = 0;
    std::vector<sock::task<>> tasks;
    tasks.push_back([](int* d) -> sock::task<> {
        witness w(d);
        co_await sock::sleep(1h);
    }(&destroyed));
    tasks.push_back([]() -> sock::task<> {
        co_await sock::sleep(5ms);
        throw std::invalid_argument("second failed");
    }());
    tasks.push_back([](int* d) -> sock::task<> {
        witness w(d);
        co_await sock::sleep(1h);
    }(&destroyed));
    try {
        sock::run(loop, sock::when_all(std::move(tasks)));
        ADD_FAILURE() << "no error";
    } catch (const std::invalid_argument& e) {
        EXPECT_STREQ(e.what(), "second failed");
    }
    EXPECT_EQ(destroyed, 2);
    EXPECT_EQ(loop.timers().armed, 0u);
}

TEST(WhenAll, AFailureBeforeTheOthersStartLeavesThemUnstarted) {
    sock::event_loop loop;
    int started = 0;
    std::vector<sock::task<>> tasks;
    tasks.push_back([]() -> sock::task<> { throw std::runtime_error("at once"); co_return; }());
    tasks.push_back([](int* s) -> sock::task<> {
        ++*s;
        co_return;
    }(&started));
    EXPECT_THROW(sock::run(loop, sock::when_all(std::move(tasks))), std::runtime_error);
    EXPECT_EQ(started, 0);
}

// A time limit on the whole group cancels every member.
TEST(WhenAll, UnderWaitForEveryTaskIsCancelled) {
    sock::event_loop loop;
    int destroyed = 0;
    std::vector<sock::task<int>> tasks;
    tasks.push_back(sleeps_then_answers(1h, &destroyed));
    tasks.push_back(sleeps_then_answers(1h, &destroyed));
    tasks.push_back(sleeps_then_answers(1ms, &destroyed));
    auto o = run_catching(loop, sock::wait_for(sock::when_all(std::move(tasks)), 20ms));
    EXPECT_EQ(o.error, "wait_for: timed out");
    EXPECT_EQ(destroyed, 3);
    EXPECT_EQ(loop.timers().armed, 0u);
}

}  // namespace
