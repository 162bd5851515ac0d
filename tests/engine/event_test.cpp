// sock::async_event, asyncio.Event on the loop: waiters wake on the loop's next turn after set(),
// never inside it; cancellation and destruction leave nothing behind.

#include "support.hpp"

#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;

TEST(Event, SetWakesEveryWaiterOnTheNextTurnNotInsideSet) {
    sock::event_loop loop;
    sock::async_event ev;
    std::vector<std::string> log;
    sock::task_set waiters;
    for (const char* name : {"a", "b"})
        waiters.spawn([](sock::async_event& e, std::vector<std::string>& l, std::string n) -> sock::task<> {
            co_await e.wait();
            l.push_back(n);
        }(ev, log, name));
    EXPECT_EQ(waiters.size(), 2u);
    sock::run(loop, [](sock::async_event& e, std::vector<std::string>& l, sock::task_set& w) -> sock::task<> {
        e.set();
        l.push_back("set returned");
        co_await w.join();
    }(ev, log, waiters));
    ASSERT_EQ(log.size(), 3u);
    EXPECT_EQ(log[0], "set returned");
    EXPECT_TRUE(ev.is_set());
}

TEST(Event, ASetEventIsReadyAndClearMakesWaitsSuspendAgain) {
    sock::event_loop loop;
    sock::async_event ev;
    ev.set();
    int passed = 0;
    sock::task_set t;
    t.spawn([](sock::async_event& e, int& p) -> sock::task<> {
        co_await e.wait();  // set: no suspension
        ++p;
        e.clear();
        co_await e.wait();
        ++p;
    }(ev, passed));
    EXPECT_EQ(passed, 1);
    EXPECT_EQ(t.size(), 1u);
    ev.set();
    EXPECT_EQ(passed, 1);  // not inside set()
    sock::run(loop, [](sock::task_set& s) -> sock::task<> { co_await s.join(); }(t));
    EXPECT_EQ(passed, 2);
}

TEST(Event, ACancelledWaitRaisesOperationCanceledAndLeavesTheEvent) {
    sock::event_loop loop;
    sock::async_event ev;
    const auto what = sock::run(loop, [](sock::async_event& e) -> sock::task<std::string> {
        try {
            co_await sock::wait_for([](sock::async_event& x) -> sock::task<> { co_await x.wait(); }(e), 10ms);
        } catch (const sock::timeout& t) {
            co_return t.what();
        }
        co_return "";
    }(ev));
    EXPECT_EQ(what, "wait_for: timed out");
    ev.set();  // no waiter is left to wake
    EXPECT_EQ(loop.timers().armed, 0u);
}

TEST(Event, AWaiterDestroyedAfterSetIsNotResumed) {
    sock::event_loop loop;
    sock::async_event ev;
    int woke = 0;
    {
        sock::task_set t;
        t.spawn([](sock::async_event& e, int& w) -> sock::task<> {
            co_await e.wait();
            ++w;
        }(ev, woke));
        ev.set();
        EXPECT_EQ(loop.timers().armed, 1u);
    }  // destroyed with its wake-up pending
    EXPECT_EQ(loop.timers().armed, 0u);
    sock::run(loop, []() -> sock::task<> { co_await sock::sleep(1ms); }());
    EXPECT_EQ(woke, 0);
}

}  // namespace
