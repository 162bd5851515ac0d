// The event loop's timers: order, cancel, restart, starts from callbacks, many at once, one-off
// durations that leave nothing behind, and cancel_all.

#include "support.hpp"

#include <algorithm>
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

namespace {

/// A timer that asks for cancel_all's call: logs its id there, then runs `then`.
struct cancellable : sock::timer {
    int id = 0;
    std::vector<int>* log = nullptr;
    std::function<void(cancellable&)> then;

    cancellable(int i, std::vector<int>& l, std::function<void(cancellable&)> fn = {})
        : id(i), log(&l), then(std::move(fn)) {
        fire = [](sock::timer&) { ADD_FAILURE() << "fired instead of being cancelled"; };
        on_cancel = [](sock::timer& t) {
            auto& c = static_cast<cancellable&>(t);
            c.log->push_back(c.id);
            if (c.then) c.then(c);
        };
    }
};

int count(const std::vector<int>& log, int id) {
    return static_cast<int>(std::count(log.begin(), log.end(), id));
}

// Every distinct duration used to keep a list for the loop's lifetime, scanned by every start
// and every iteration. Once 20,000 one-off durations have come and gone, nothing is left of
// them, whether they were armed all at once or one after another.
TEST(Timer, DistinctDurationsLeaveNothingBehind) {
    constexpr int n = 20'000;
    sock::event_loop loop;
    std::vector<int> log;
    log.reserve(n);
    std::vector<std::unique_ptr<probe>> timers;
    for (int i = 0; i < n; ++i) {
        timers.push_back(std::make_unique<probe>(i, log, [&](probe&) {
            if (log.size() == n) loop.stop();
        }));
        // Started in the reverse of deadline order, 1 µs apart: 20 ms in all.
        loop.start(*timers.back(), std::chrono::microseconds(n - i));
    }
    EXPECT_EQ(loop.timers().armed, static_cast<std::size_t>(n));
    loop.run();
    ASSERT_EQ(log.size(), static_cast<std::size_t>(n));
    for (int k = 0; k < n; ++k) ASSERT_EQ(log[static_cast<std::size_t>(k)], n - 1 - k) << "at " << k;
    auto used = loop.timers();
    EXPECT_EQ(used.armed, 0u);
    EXPECT_EQ(used.lists, 0u);
    EXPECT_LE(used.heap_capacity, 1024u);

    // One after another, as timeouts computed from a deadline are (already passed, here).
    int left = n;
    probe chain(0, log, [&](probe& self) {
        if (--left == 0) {
            loop.stop();
            return;
        }
        EXPECT_LE(loop.timers().lists, 8u);
        loop.start(self, -std::chrono::nanoseconds(left));
    });
    loop.start(chain, -std::chrono::nanoseconds(left));
    loop.run();
    EXPECT_EQ(left, 0);
    used = loop.timers();
    EXPECT_EQ(used.armed, 0u);
    EXPECT_EQ(used.lists, 0u);
    EXPECT_LE(used.heap_capacity, 1024u);
}

// Timers in the duration lists and in the heap, some cancelled and some restarted, still fire
// earliest deadline first, equal deadlines in start order.
TEST(Timer, ManyDurationsWithCancelsAndRestartsFireInDeadlineOrder) {
    constexpr int n = 3'000;
    sock::event_loop loop;
    std::vector<int> log;
    std::vector<std::unique_ptr<probe>> timers;
    std::vector<std::chrono::nanoseconds> due(n);
    auto duration_of = [](int i) { return std::chrono::microseconds((i * 7919) % 5003); };
    for (int i = 0; i < n; ++i) {
        timers.push_back(std::make_unique<probe>(i, log));
        due[static_cast<std::size_t>(i)] = duration_of(i);
        loop.start(*timers.back(), due[static_cast<std::size_t>(i)]);
    }
    std::vector<bool> cancelled(n, false);
    for (int i = 0; i < n; i += 3) {
        loop.cancel(*timers[static_cast<std::size_t>(i)]);
        cancelled[static_cast<std::size_t>(i)] = true;
    }
    for (int i = 1; i < n; i += 7) {
        due[static_cast<std::size_t>(i)] = std::chrono::microseconds(i % 11);
        loop.start(*timers[static_cast<std::size_t>(i)], due[static_cast<std::size_t>(i)]);
        cancelled[static_cast<std::size_t>(i)] = false;
    }
    probe stopper(-1, log, [&](probe&) { loop.stop(); });
    loop.start(stopper, 6ms);
    loop.run();
    ASSERT_EQ(log.back(), -1);
    log.pop_back();
    std::size_t expected = 0;
    for (int i = 0; i < n; ++i) expected += !cancelled[static_cast<std::size_t>(i)];
    ASSERT_EQ(log.size(), expected);
    for (int id : log) ASSERT_FALSE(cancelled[static_cast<std::size_t>(id)]) << "timer " << id;
    // All started at the same loop time: deadline order is duration order. Among equal
    // durations, the restarted ones (started later) come after the others.
    auto started_late = [](int i) { return i % 7 == 1; };
    for (std::size_t k = 1; k < log.size(); ++k) {
        const int a = log[k - 1], b = log[k];
        const auto da = due[static_cast<std::size_t>(a)], db = due[static_cast<std::size_t>(b)];
        const bool in_order = da < db || (da == db && (started_late(a) == started_late(b)
                                                           ? a < b
                                                           : started_late(b)));
        ASSERT_TRUE(in_order) << "timer " << a << " fired before " << b;
    }
}

// A zero-delay timer that restarts itself from its callback is due again at once. It must wait
// for the next pass, or I/O, posted work and stop() never get through.
TEST(Timer, ZeroDelayTimerRestartedFromItsCallbackLetsTheLoopMoveOn) {
    sock::event_loop loop;
    std::vector<int> log;
    int fired = 0;
    probe spinner(0, log, [&](probe& self) {
        // Bounded, so that the loop spinning here fails the test instead of hanging it.
        if (++fired < 100'000) loop.start(self, 0ns);
    });
    bool posted_ran = false;
    loop.start(spinner, 0ns);
    loop.post([&] {
        posted_ran = true;
        loop.stop();
    });
    loop.run();
    EXPECT_TRUE(posted_ran);
    EXPECT_LE(fired, 2);
    EXPECT_TRUE(spinner.armed());

    // Two passes for two restarts, whatever else is due.
    fired = 0;
    int passes = 0;
    probe other(1, log, [&](probe& self) {
        if (++passes < 2) loop.start(self, 0ns);
        else loop.stop();
    });
    loop.start(other, 0ns);
    loop.run();
    EXPECT_EQ(passes, 2);
    EXPECT_LE(fired, 3);
    loop.cancel(spinner);
}

// cancel_all (graceful stop) disarms the timers that have on_cancel and calls it, in the lists
// and in the heap alike; the others stay armed. The calls may cancel, restart, start or
// destroy timers: a timer cancelled before its turn is not called, a restarted one is called
// once, a new one not at all.
TEST(Timer, CancelAllCancelsTheTimersThatAskForIt) {
    sock::event_loop loop;
    std::vector<int> log;
    std::vector<int> canceled;
    probe plain(0, log);
    loop.start(plain, 10s);

    // Each of a pair cancels the other: exactly one of the two is called.
    cancellable a(1, canceled), b(2, canceled);
    a.then = [&](cancellable&) { loop.cancel(b); };
    b.then = [&](cancellable&) { loop.cancel(a); };
    loop.start(a, 10s);
    loop.start(b, 20s);

    cancellable restarts(3, canceled, [&](cancellable& self) { loop.start(self, 30s); });
    loop.start(restarts, 10s);

    std::unique_ptr<cancellable> started;
    cancellable starter(4, canceled, [&](cancellable&) {
        started = std::make_unique<cancellable>(5, canceled);
        loop.start(*started, 10s);
    });
    loop.start(starter, 10s);

    // Each of a pair destroys the other (cancelling it first, as an owner must).
    auto d1 = std::make_unique<cancellable>(6, canceled);
    auto d2 = std::make_unique<cancellable>(7, canceled);
    d1->then = [&](cancellable&) {
        if (d2) loop.cancel(*d2);
        d2.reset();
    };
    d2->then = [&](cancellable&) {
        if (d1) loop.cancel(*d1);
        d1.reset();
    };
    loop.start(*d1, 40s);
    loop.start(*d2, 50s);

    // More durations than there are lists, so that some of these sit in the heap.
    std::vector<std::unique_ptr<cancellable>> many;
    for (int i = 0; i < 20; ++i) {
        many.push_back(std::make_unique<cancellable>(100 + i, canceled));
        loop.start(*many.back(), 60s + std::chrono::milliseconds(i));
    }

    loop.cancel_all();
    EXPECT_EQ(count(canceled, 1) + count(canceled, 2), 1);
    EXPECT_FALSE(a.armed());
    EXPECT_FALSE(b.armed());
    EXPECT_EQ(count(canceled, 3), 1);
    EXPECT_TRUE(restarts.armed());
    EXPECT_EQ(count(canceled, 4), 1);
    EXPECT_EQ(count(canceled, 5), 0);
    ASSERT_NE(started, nullptr);
    EXPECT_TRUE(started->armed());
    EXPECT_EQ(count(canceled, 6) + count(canceled, 7), 1);
    for (int i = 0; i < 20; ++i) {
        EXPECT_EQ(count(canceled, 100 + i), 1) << i;
        EXPECT_FALSE(many[static_cast<std::size_t>(i)]->armed());
    }
    EXPECT_TRUE(plain.armed());
    EXPECT_EQ(loop.timers().armed, 3u);  // plain, restarts, started

    // A timer with on_cancel still fires as usual when not cancelled.
    std::vector<int> fired;
    probe fires(8, fired, [&](probe&) { loop.stop(); });
    fires.on_cancel = [](sock::timer&) {};
    loop.start(fires, 1ms);
    loop.run();
    EXPECT_EQ(fired, (std::vector<int>{8}));
    loop.cancel(plain);
    loop.cancel(restarts);
    loop.cancel(*started);
}

}  // namespace
