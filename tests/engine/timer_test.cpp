// The event loop's timers: order, cancel, restart, starts from callbacks, many at once.

#include "support.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

namespace {

using namespace std::chrono_literals;
using clock_type = sock::event_loop::clock;

/// A timer that logs its id when it fires, then runs `then`.
struct probe : sock::timer {
    int id = 0;
    std::vector<int>* log = nullptr;
    std::function<void(probe&)> then;

    probe(int i, std::vector<int>& l, std::function<void(probe&)> fn = {})
        : id(i), log(&l), then(std::move(fn)) {
        fire = [](sock::timer& t) {
            auto& p = static_cast<probe&>(t);
            p.log->push_back(p.id);
            if (p.then) p.then(p);
        };
    }
};

/// Keeps the loop's thread busy until `d` past the start of this iteration, so that timers
/// due within d are all late and expire in one pass.
void make_late(sock::event_loop& loop, std::chrono::nanoseconds d) {
    while (clock_type::now() < loop.now() + d) {
    }
}

TEST(Timer, FiresInDeadlineOrderAcrossDurations) {
    sock::event_loop loop;
    std::vector<int> log;
    probe t30(30, log, [&](probe&) { loop.stop(); });
    probe t10(10, log), t20(20, log), t10b(11, log), t0(0, log);
    loop.start(t30, 30ms);
    loop.start(t10, 10ms);
    loop.start(t20, 20ms);
    loop.start(t10b, 10ms);
    loop.start(t0, 0ms);
    EXPECT_TRUE(t30.armed());
    loop.run();
    EXPECT_EQ(log, (std::vector<int>{0, 10, 11, 20, 30}));
    EXPECT_FALSE(t30.armed());
    EXPECT_FALSE(t10.armed());
}

// When the loop is late, every timer due is fired in one pass: still earliest deadline first,
// whatever order their durations were first seen in.
TEST(Timer, LateLoopStillFiresInDeadlineOrder) {
    sock::event_loop loop;
    std::vector<int> log;
    probe t30(30, log, [&](probe&) { loop.stop(); });
    probe t10(10, log), t20(20, log), t5(5, log);
    loop.post([&] {
        loop.start(t30, 30ms);
        loop.start(t10, 10ms);
        loop.start(t20, 20ms);
        loop.start(t5, 5ms);
        make_late(loop, 40ms);
    });
    loop.run();
    EXPECT_EQ(log, (std::vector<int>{5, 10, 20, 30}));
}

TEST(Timer, CancelBeforeFiring) {
    sock::event_loop loop;
    std::vector<int> log;
    probe a(1, log), b(2, log), stopper(3, log, [&](probe&) { loop.stop(); });
    loop.start(a, 5ms);
    loop.start(b, 10ms);
    loop.start(stopper, 20ms);
    loop.cancel(a);
    EXPECT_FALSE(a.armed());
    loop.cancel(a);  // not armed: nothing happens
    loop.run();
    EXPECT_EQ(log, (std::vector<int>{2, 3}));
}

TEST(Timer, RestartingAnArmedTimerMovesIt) {
    sock::event_loop loop;
    std::vector<int> log;
    probe a(1, log), b(2, log), stopper(3, log, [&](probe&) { loop.stop(); });
    loop.start(a, 5ms);
    loop.start(b, 10ms);
    loop.start(stopper, 30ms);
    loop.start(a, 20ms);  // once, later
    loop.run();
    EXPECT_EQ(log, (std::vector<int>{2, 1, 3}));
}

// A callback cancels timers that are due in the same pass: the next one of its own duration
// and one of another duration. Neither fires.
TEST(Timer, CancelInsideAnotherTimersCallback) {
    sock::event_loop loop;
    std::vector<int> log;
    probe b(2, log), other(3, log);
    probe a(1, log, [&](probe&) {
        loop.cancel(b);
        loop.cancel(other);
    });
    probe stopper(4, log, [&](probe&) { loop.stop(); });
    loop.post([&] {
        loop.start(a, 5ms);
        loop.start(b, 5ms);
        loop.start(other, 8ms);
        loop.start(stopper, 30ms);
        make_late(loop, 10ms);  // a, b and other are all due in the next pass
    });
    loop.run();
    EXPECT_EQ(log, (std::vector<int>{1, 4}));
}

// A callback starts timers of many durations the loop has not seen yet (its bookkeeping
// grows while it is firing), and restarts itself; each fires once, in deadline order.
TEST(Timer, StartFromWithinACallback) {
    sock::event_loop loop;
    std::vector<int> log;
    std::vector<std::unique_ptr<probe>> started;
    int restarts = 0;
    probe first(0, log, [&](probe& self) {
        for (int i = 40; i >= 1; --i) {
            started.push_back(std::make_unique<probe>(i, log));
            loop.start(*started.back(), std::chrono::milliseconds(i));
        }
        if (restarts++ == 0) loop.start(self, 100ms);
    });
    probe stopper(1000, log, [&](probe&) { loop.stop(); });
    loop.start(first, 1ms);
    loop.start(stopper, 500ms);
    loop.run();
    // 0, then 1..40 (the first batch), then 0 again at 100 ms, then 1..40 again, then stop.
    std::vector<int> want{0};
    for (int i = 1; i <= 40; ++i) want.push_back(i);
    want.push_back(0);
    for (int i = 1; i <= 40; ++i) want.push_back(i);
    want.push_back(1000);
    EXPECT_EQ(log, want);
}

TEST(Timer, TenThousandTimersFireOnceEachInDeadlineOrder) {
    constexpr int n = 10'000;
    sock::event_loop loop;
    std::vector<int> log;
    log.reserve(n);
    std::vector<std::unique_ptr<probe>> timers;
    auto duration_of = [](int i) { return std::chrono::milliseconds((i * 7919) % 37); };
    for (int i = 0; i < n; ++i) {
        timers.push_back(std::make_unique<probe>(i, log, [&](probe&) {
            if (log.size() == n) loop.stop();
        }));
        loop.start(*timers.back(), duration_of(i));
    }
    loop.run();
    ASSERT_EQ(log.size(), static_cast<std::size_t>(n));
    std::vector<int> count(n, 0);
    for (int id : log) ++count[static_cast<std::size_t>(id)];
    for (int i = 0; i < n; ++i) ASSERT_EQ(count[static_cast<std::size_t>(i)], 1) << "timer " << i;
    // All started at the same loop time: deadline order is duration order, then start order.
    for (std::size_t k = 1; k < log.size(); ++k) {
        const auto da = duration_of(log[k - 1]), db = duration_of(log[k]);
        ASSERT_TRUE(da < db || (da == db && log[k - 1] < log[k]))
            << "timer " << log[k - 1] << " fired before " << log[k];
    }
    for (auto& t : timers) EXPECT_FALSE(t->armed());
}

}  // namespace
