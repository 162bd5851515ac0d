// Coroutine tasks: values, exceptions, nesting, spawn, lifetime, sock::run, sock::sleep,
// the frame pool.

#include "support.hpp"

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;

struct custom_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

sock::task<int> forty_two() { co_return 42; }

sock::task<std::string> text(std::string s) { co_return s + "!"; }

sock::task<std::unique_ptr<int>> boxed(int v) { co_return std::make_unique<int>(v); }

sock::task<> throws_at_once() {
    throw custom_error("at once");
    co_return;
}

sock::task<int> throws_after_suspending(sock::event_loop& loop) {
    co_await engine_test::yield_to{loop};
    throw custom_error("inner failed");
}

TEST(Task, ReturnsValuesOfAnyMovableType) {
    sock::event_loop loop;
    EXPECT_EQ(sock::run(loop, forty_two()), 42);
    EXPECT_EQ(sock::run(loop, text("hi")), "hi!");
    auto p = sock::run(loop, boxed(7));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(*p, 7);
}

TEST(Task, ExceptionsTravelToTheAwaiter) {
    sock::event_loop loop;
    auto outer = [](sock::event_loop& l) -> sock::task<std::string> {
        try {
            co_await throws_after_suspending(l);
        } catch (const custom_error& e) {
            co_return std::string("caught: ") + e.what();
        }
        co_return "not thrown";
    };
    EXPECT_EQ(sock::run(loop, outer(loop)), "caught: inner failed");
}

sock::task<long> sum_down(sock::event_loop& loop, int n) {
    if (n == 0) co_return 0;
    if (n % 100 == 0) co_await engine_test::yield_to{loop};  // some levels suspend
    co_return n + co_await sum_down(loop, n - 1);
}

TEST(Task, NestedAwaitsThousandsDeep) {
    sock::event_loop loop;
    EXPECT_EQ(sock::run(loop, sum_down(loop, 5000)), 5000L * 5001 / 2);
}

TEST(Task, RunRethrowsWhatTheTaskThrew) {
    sock::event_loop loop;
    EXPECT_THROW(sock::run(loop, throws_after_suspending(loop)), custom_error);
    auto void_task = [](sock::event_loop& l) -> sock::task<> {
        co_await engine_test::yield_to{l};
        throw custom_error("void failed");
    };
    EXPECT_THROW(sock::run(loop, void_task(loop)), custom_error);
    // The loop is usable after a failed run.
    EXPECT_EQ(sock::run(loop, forty_two()), 42);
}

struct done_record {
    int calls = 0;
    std::exception_ptr ex;
    static void on_done(void* ctx, std::exception_ptr ex) noexcept {
        auto& r = *static_cast<done_record*>(ctx);
        ++r.calls;
        r.ex = std::move(ex);
    }
};

TEST(Task, SpawnReportsHowTheTaskEnded) {
    sock::event_loop loop;
    done_record ok, failed, failed_late;
    int progress = 0;
    // Runs to completion inside spawn, on this thread.
    sock::spawn([](int& p) -> sock::task<> {
        ++p;
        co_return;
    }(progress), &done_record::on_done, &ok);
    EXPECT_EQ(ok.calls, 1);
    EXPECT_FALSE(ok.ex);
    EXPECT_EQ(progress, 1);

    sock::spawn(throws_at_once(), &done_record::on_done, &failed);
    ASSERT_EQ(failed.calls, 1);
    EXPECT_THROW(std::rethrow_exception(failed.ex), custom_error);

    // Suspends, then throws from inside the loop.
    sock::spawn([](sock::event_loop& l) -> sock::task<> {
        co_await engine_test::yield_to{l};
        l.stop();
        throw custom_error("later");
    }(loop), &done_record::on_done, &failed_late);
    EXPECT_EQ(failed_late.calls, 0);
    loop.run();
    ASSERT_EQ(failed_late.calls, 1);
    try {
        std::rethrow_exception(failed_late.ex);
    } catch (const custom_error& e) {
        EXPECT_STREQ(e.what(), "later");
    }
}

TEST(Task, ATaskDestroyedBeforeStartingFreesWithoutRunning) {
    auto token = std::make_shared<int>(0);
    bool ran = false;
    {
        auto t = [](std::shared_ptr<int> held, bool& r) -> sock::task<int> {
            r = true;
            co_return *held;
        }(token, ran);
        EXPECT_EQ(token.use_count(), 2);  // the frame holds its copy of the argument
    }
    EXPECT_FALSE(ran);
    EXPECT_EQ(token.use_count(), 1);  // the frame is gone with it

    // Moved-from and move-assigned tasks free exactly once.
    auto a = [](std::shared_ptr<int> held) -> sock::task<> {
        (void)held;
        co_return;
    }(token);
    auto b = std::move(a);
    auto c = [](std::shared_ptr<int> held) -> sock::task<> {
        (void)held;
        co_return;
    }(token);
    EXPECT_EQ(token.use_count(), 3);
    c = std::move(b);
    EXPECT_EQ(token.use_count(), 2);
    c = sock::task<>();
    EXPECT_EQ(token.use_count(), 1);
}

TEST(Task, SleepResumesAfterEarlierTimersAndBeforeLaterOnes) {
    sock::event_loop loop;
    std::vector<std::string> log;
    auto sleeper = [](std::vector<std::string>& l, std::chrono::milliseconds d,
                      std::string name) -> sock::task<> {
        co_await sock::sleep(d);
        l.push_back(name);
    };
    auto all = [&]() -> sock::task<> {
        sock::spawn(sleeper(log, 30ms, "30"));
        sock::spawn(sleeper(log, 10ms, "10"));
        co_await sock::sleep(20ms);
        log.push_back("20");
        co_await sock::sleep(0ms);  // yields, but nothing else is due yet
        log.push_back("0");
        co_await sock::sleep(15ms);
        log.push_back("35");
    };
    sock::run(loop, all());
    EXPECT_EQ(log, (std::vector<std::string>{"10", "20", "0", "30", "35"}));
}

// As asyncio's sleep(0): a yield, after which what was woken earlier has run.
TEST(Task, SleepZeroLetsWhatIsReadyRunFirst) {
    sock::event_loop loop;
    std::vector<std::string> log;
    sock::async_event ev;
    auto waiter = [](sock::async_event& e, std::vector<std::string>& l) -> sock::task<> {
        co_await e.wait();
        l.push_back("woken");
    };
    auto yielder = [](std::vector<std::string>& l, std::string name,
                      std::chrono::nanoseconds d) -> sock::task<> {
        l.push_back(name + "1");
        co_await sock::sleep(d);
        l.push_back(name + "2");
    };
    auto all = [&]() -> sock::task<> {
        sock::task_set tasks;
        tasks.spawn(waiter(ev, log));
        co_await sock::sleep(1ms);  // the waiter waits
        ev.set();
        tasks.spawn(yielder(log, "a", 0ns));
        tasks.spawn(yielder(log, "b", -5ms));  // as 0: after a, not before the wake-up
        co_await tasks.join();
    };
    sock::run(loop, all());
    EXPECT_EQ(log, (std::vector<std::string>{"a1", "b1", "woken", "a2", "b2"}));
}

TEST(Task, SleepWithoutALoopThrowsLogicError) {
    done_record r;
    std::thread([&] {
        sock::spawn([]() -> sock::task<> { co_await sock::sleep(1ms); }(), &done_record::on_done,
                    &r);
    }).join();
    ASSERT_EQ(r.calls, 1);
    EXPECT_THROW(std::rethrow_exception(r.ex), std::logic_error);
}

// 100k spawned tasks of several frame sizes, many alive at once, each awaiting a child: the
// per-thread frame lists recycle frames constantly and no result gets mixed up.
template <std::size_t N>
sock::task<long> padded(long v) {
    volatile char pad[N];  // lives across a suspension point: in the frame
    pad[0] = static_cast<char>(v);
    pad[N - 1] = static_cast<char>(v >> 8);
    co_await std::suspend_never{};
    co_return v * 2 + (pad[0] - static_cast<char>(v)) + (pad[N - 1] - static_cast<char>(v >> 8));
}

sock::task<> short_task(long i, std::vector<long>& out, bool suspend) {
    if (suspend) co_await sock::sleep(1ms);
    long v = 0;
    switch (i % 3) {
        case 0: v = co_await padded<16>(i); break;
        case 1: v = co_await padded<600>(i); break;
        default: v = co_await padded<3000>(i); break;
    }
    out[static_cast<std::size_t>(i)] = v;
}

TEST(Task, FramePoolSurvivesAHundredThousandShortTasks) {
    constexpr long n = 100'000;
    sock::event_loop loop;
    std::vector<long> out(n, -1);
    long finished = 0;
    struct counter {
        long* finished;
        long target;
        sock::event_loop* loop;
        static void on_done(void* ctx, std::exception_ptr ex) noexcept {
            auto& c = *static_cast<counter*>(ctx);
            if (ex) return;
            if (++*c.finished == c.target) c.loop->stop();
        }
    } ctr{&finished, n, &loop};
    // Batches of 1000: the odd ones wait on a timer (all alive together), the even ones finish
    // inside spawn, so frames are freed and reused in both patterns.
    for (long i = 0; i < n; ++i)
        sock::spawn(short_task(i, out, (i / 1000) % 2 == 1), &counter::on_done, &ctr);
    loop.run();
    EXPECT_EQ(finished, n);
    for (long i = 0; i < n; ++i) ASSERT_EQ(out[static_cast<std::size_t>(i)], 2 * i) << i;
}

}  // namespace
