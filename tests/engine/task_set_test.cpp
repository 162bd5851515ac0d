// Tasks that must not outlive their owner: task_set, sock::run when the loop stops early, and
// sock::sleep under cancellation and destruction.

#include "support.hpp"

#include <atomic>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;

using engine_test::witness;

sock::task<> sleep_long(int* destroyed) {
    witness w(destroyed);
    co_await sock::sleep(1h);
}

sock::task<> outer(int* destroyed) {
    witness w(destroyed);
    co_await sleep_long(destroyed);  // the inner frame belongs to this one
}

TEST(TaskSet, TasksLeaveWhenTheyEnd) {
    sock::event_loop loop;
    sock::task_set set;
    int destroyed = 0;
    set.spawn([](int* d) -> sock::task<> {
        witness w(d);
        co_return;
    }(&destroyed));
    EXPECT_EQ(set.size(), 0u);  // ended during spawn
    EXPECT_EQ(destroyed, 1);
    set.spawn(sleep_long(&destroyed));
    set.spawn(sleep_long(&destroyed));
    EXPECT_EQ(set.size(), 2u);
    EXPECT_EQ(set.destroy_all(), 2u);
    EXPECT_EQ(destroyed, 3);
    EXPECT_TRUE(set.empty());
}

// Destroying a suspended task destroys what it awaits, innermost first, and the sleep it was
// in disarms itself: running the loop past its deadline touches nothing freed (ASan).
TEST(TaskSet, DestroyingSuspendedTasksRunsEveryDestructorAndDisarmsTheirTimers) {
    sock::event_loop loop;
    int destroyed = 0;
    {
        sock::task_set set;
        set.spawn(outer(&destroyed));
        set.spawn([](int* d) -> sock::task<> {
            witness w(d);
            co_await sock::sleep(20ms);
            ADD_FAILURE() << "a destroyed task resumed";
        }(&destroyed));
        EXPECT_EQ(loop.timers().armed, 2u);
    }  // the set's destructor destroys both
    EXPECT_EQ(destroyed, 3);
    EXPECT_EQ(loop.timers().armed, 0u);
    sock::spawn([](sock::event_loop& l) -> sock::task<> {
        co_await sock::sleep(50ms);
        l.stop();
    }(loop));
    loop.run();
}

TEST(TaskSet, OnDoneIsCalledForTasksThatEndNotForDestroyedOnes) {
    sock::event_loop loop;
    sock::task_set set;
    int done = 0;
    int destroyed = 0;
    auto on_done = [](void* ctx, std::exception_ptr) noexcept { ++*static_cast<int*>(ctx); };
    set.spawn(sleep_long(&destroyed), on_done, &done);
    set.spawn([]() -> sock::task<> { co_return; }(), on_done, &done);
    EXPECT_EQ(done, 1);
    set.destroy_all();
    EXPECT_EQ(done, 1);
    EXPECT_EQ(destroyed, 1);
}

// A sleeping task wakes with operation_canceled when the loop cancels everything (a
// server's stop), so it unwinds through its own code.
TEST(TaskSetJoin, ReturnsAtOnceForAnEmptySetAndAfterTheLastTaskEnds) {
    sock::event_loop loop;
    sock::task_set set;
    std::vector<int> order;
    sock::run(loop, [](sock::task_set& s, std::vector<int>& o) -> sock::task<> {
        co_await s.join();  // nothing to wait for
        for (int i : {3, 1, 2})
            s.spawn([](int n, std::vector<int>& out) -> sock::task<> {
                co_await sock::sleep(std::chrono::milliseconds(n));
                out.push_back(n);
            }(i, o));
        co_await s.join();
        o.push_back(0);
    }(set, order));
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 0}));
}

TEST(TaskSetJoin, CancellingTheJoinerLeavesTheTasksRunning) {
    sock::event_loop loop;
    sock::task_set set;
    int destroyed = 0;
    set.spawn(sleep_long(&destroyed));
    bool canceled = false;
    sock::run(loop, [](sock::task_set& s, bool& c) -> sock::task<> {
        try {
            co_await sock::wait_for([](sock::task_set& t) -> sock::task<> { co_await t.join(); }(s), 10ms);
        } catch (const sock::timeout&) {
            c = true;
        }
    }(set, canceled));
    EXPECT_TRUE(canceled);
    EXPECT_EQ(set.size(), 1u);
    EXPECT_EQ(destroyed, 0);
    // A second joiner may come now that the first has gone; destroy_all wakes it.
    sock::task_set joiners;
    bool joined = false;
    joiners.spawn([](sock::task_set& s, bool& j) -> sock::task<> {
        co_await s.join();
        j = true;
    }(set, joined));
    EXPECT_FALSE(joined);
    EXPECT_EQ(set.destroy_all(), 1u);
    EXPECT_TRUE(joined);
}

TEST(TaskSetJoin, OneJoinerAtATime) {
    sock::event_loop loop;
    sock::task_set set;
    int destroyed = 0;
    set.spawn(sleep_long(&destroyed));
    sock::task_set joiners;
    joiners.spawn([](sock::task_set& s) -> sock::task<> { co_await s.join(); }(set));
    EXPECT_THROW(sock::run(loop, [](sock::task_set& s) -> sock::task<> { co_await s.join(); }(set)),
                 std::logic_error);
    joiners.destroy_all();  // the joiner's awaiter leaves the set as its frame goes
    EXPECT_EQ(set.destroy_all(), 1u);
}

TEST(Sleep, CancelAllWakesASleeperWithOperationCanceled) {
    sock::event_loop loop;
    std::optional<std::string> what;
    std::error_code code;
    sock::spawn([](std::optional<std::string>& w, std::error_code& c) -> sock::task<> {
        try {
            co_await sock::sleep(1h);
        } catch (const sock::error& e) {
            w = e.what();
            c = e.code();
        }
    }(what, code));
    loop.post([&] {
        loop.cancel_all();
        loop.stop();
    });
    loop.run();
    ASSERT_TRUE(what.has_value()) << "the sleeper was not woken";
    EXPECT_EQ(code, std::errc::operation_canceled);
    EXPECT_EQ(*what, "sleep: " + std::make_error_code(std::errc::operation_canceled).message());
    EXPECT_EQ(loop.timers().armed, 0u);
}

// sock::run must not return before its task ends. When the loop stops for another reason
// (here a stop requested before run), the task is destroyed, its destructors run, and run
// says so; nothing is left that the next loop.run() could resume into run's dead locals.
TEST(Run, ALoopStoppedElsewhereDestroysTheTaskAndThrows) {
    sock::event_loop loop;
    int destroyed = 0;
    loop.stop();  // requested before run: the loop's next run() returns at once
    try {
        sock::run(loop, outer(&destroyed));
        ADD_FAILURE() << "run returned before its task finished";
    } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "sock::run: the event loop stopped before the task finished");
    }
    EXPECT_EQ(destroyed, 2);
    EXPECT_EQ(loop.timers().armed, 0u);
    // The loop is usable afterwards, and nothing of the first run wakes up in it.
    EXPECT_EQ(sock::run(loop, []() -> sock::task<int> {
                  co_await sock::sleep(10ms);
                  co_return 42;
              }()),
              42);
}

TEST(Run, ALoopStoppedByOtherCodeWhileTheTaskWaits) {
    sock::event_loop loop;
    int destroyed = 0;
    sock::spawn([](sock::event_loop& l) -> sock::task<> {
        co_await sock::sleep(10ms);
        l.stop();  // someone else's stop, while run's task still sleeps
    }(loop));
    EXPECT_THROW(sock::run(loop, []([[maybe_unused]] int* d) -> sock::task<std::string> {
                     witness w(d);
                     co_await sock::sleep(1h);
                     co_return "never";
                 }(&destroyed)),
                 std::runtime_error);
    EXPECT_EQ(destroyed, 1);
    EXPECT_EQ(loop.timers().armed, 0u);
}

TEST(Run, ReturnsTheValueAndRethrows) {
    sock::event_loop loop;
    EXPECT_EQ(sock::run(loop, []() -> sock::task<std::string> { co_return "done"; }()), "done");
    EXPECT_THROW(sock::run(loop, []() -> sock::task<> {
                     co_await sock::sleep(1ms);
                     throw std::invalid_argument("bad");
                 }()),
                 std::invalid_argument);
}

}  // namespace
