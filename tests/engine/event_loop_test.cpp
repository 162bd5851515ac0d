// The event loop: threads, descriptors and their handlers, cancel_all.

#include "support.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

using engine_test::client_timeout;

/// An io_handler whose reactions are lambdas.
struct handler final : sock::io_handler {
    std::function<void(std::uint32_t)> io = [](std::uint32_t) {};
    std::function<void()> cancel = [] {};
    void on_io(std::uint32_t events) override { io(events); }
    void on_cancel() override { cancel(); }
};

/// A connected Unix stream pair as raw descriptors, closed at the end.
struct raw_pair {
    int fd[2] = {-1, -1};
    raw_pair() {
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd) != 0)
            throw std::runtime_error("socketpair failed");
    }
    ~raw_pair() {
        for (int f : fd)
            if (f >= 0) ::close(f);
    }
    raw_pair(const raw_pair&) = delete;
    raw_pair& operator=(const raw_pair&) = delete;
    void close(int i) {
        ::close(fd[i]);
        fd[i] = -1;
    }
    void write_to(int i, char c = 'x') { ASSERT_EQ(::write(fd[1 - i], &c, 1), 1); }
};

TEST(EventLoop, PostFromAnotherThreadRunsOnTheLoopsThread) {
    sock::event_loop loop;
    std::thread::id ran_on;
    int runs = 0;
    std::thread poster([&] {
        loop.post([&] {
            ran_on = std::this_thread::get_id();
            ++runs;
            loop.stop();
        });
    });
    loop.run();
    poster.join();
    EXPECT_EQ(runs, 1);
    EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST(EventLoop, PostedWorkRunsInOrderAndMayPostMore) {
    sock::event_loop loop;
    std::vector<int> order;
    loop.post([&] {
        order.push_back(1);
        loop.post([&] {
            order.push_back(3);
            loop.stop();
        });
    });
    loop.post([&] { order.push_back(2); });
    loop.run();
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(EventLoop, StopFromAnotherThreadEndsRun) {
    sock::event_loop loop;
    std::promise<void> running;
    loop.post([&] { running.set_value(); });
    std::thread stopper([&] {
        // Stop only once run() is surely dispatching, so the stop is not just consumed early.
        if (running.get_future().wait_for(client_timeout) == std::future_status::ready) loop.stop();
    });
    loop.run();  // returns only because of the other thread's stop()
    stopper.join();
    SUCCEED();
}

TEST(EventLoop, StopBeforeRunMakesRunReturnAndTheLoopRunsAgain) {
    sock::event_loop loop;
    loop.stop();
    loop.run();
    int ran = 0;
    loop.post([&] {
        ++ran;
        loop.stop();
    });
    loop.run();
    EXPECT_EQ(ran, 1);
}

TEST(EventLoop, ASecondLoopOnTheSameThreadThrows) {
    std::optional<sock::event_loop> first;
    first.emplace();
    EXPECT_EQ(sock::event_loop::current(), &*first);
    EXPECT_THROW(sock::event_loop second, std::logic_error);
    EXPECT_EQ(sock::event_loop::current(), &*first);
    // Another thread may have its own.
    std::thread([] {
        sock::event_loop other;
        EXPECT_EQ(sock::event_loop::current(), &other);
    }).join();
    first.reset();
    EXPECT_EQ(sock::event_loop::current(), nullptr);
    sock::event_loop again;
    EXPECT_EQ(sock::event_loop::current(), &again);
}

// Each loop-only method, called from a thread that does not own the loop, aborts the process.
template <class Fn>
void from_another_thread(sock::event_loop& loop, Fn fn) {
    std::thread([&] { fn(loop); }).join();
}

TEST(EventLoopDeathTest, LoopOnlyMethodsAbortFromAnotherThread) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    const char* const message = "called from a thread that does not own the loop";
    sock::event_loop loop;
    raw_pair p;
    handler h;
    EXPECT_DEATH(from_another_thread(loop, [&](auto& l) { l.add(p.fd[0], EPOLLIN, h); }), message);
    loop.add(p.fd[0], EPOLLIN, h);
    EXPECT_DEATH(from_another_thread(loop, [&](auto& l) { l.modify(p.fd[0], EPOLLOUT); }), message);
    EXPECT_DEATH(from_another_thread(loop, [&](auto& l) { l.remove(p.fd[0]); }), message);
    EXPECT_DEATH(from_another_thread(loop, [&](auto& l) { l.forget(p.fd[0]); }), message);
    EXPECT_DEATH(from_another_thread(loop, [&](auto& l) { l.cancel_all(); }), message);
    EXPECT_DEATH(from_another_thread(loop, [&](auto& l) { l.run(); }), message);
    sock::timer t;
    EXPECT_DEATH(from_another_thread(loop, [&](auto& l) { l.start(t, std::chrono::seconds(1)); }),
                 message);
    loop.remove(p.fd[0]);
}

TEST(EventLoop, AddModifyRemoveAndEvents) {
    sock::event_loop loop;
    raw_pair p;
    std::vector<std::uint32_t> seen;  // level-triggered: a phase may see its event more than once
    handler h;
    h.io = [&](std::uint32_t ev) {
        seen.push_back(ev);
        loop.stop();
    };
    loop.add(p.fd[0], EPOLLIN, h);
    EXPECT_EQ(loop.watched(), 1u);
    p.write_to(0);
    loop.run();
    ASSERT_FALSE(seen.empty());
    for (auto ev : seen) EXPECT_EQ(ev, std::uint32_t{EPOLLIN});

    char c;
    ASSERT_EQ(::read(p.fd[0], &c, 1), 1);
    seen.clear();
    loop.modify(p.fd[0], EPOLLOUT);  // a socket with room to write: reported at once
    loop.run();
    ASSERT_FALSE(seen.empty());
    for (auto ev : seen) EXPECT_EQ(ev, std::uint32_t{EPOLLOUT});

    loop.remove(p.fd[0]);
    EXPECT_EQ(loop.watched(), 0u);
    // Removed for real (EPOLL_CTL_DEL): adding it again works, and it reports again.
    seen.clear();
    loop.add(p.fd[0], EPOLLOUT, h);
    EXPECT_EQ(loop.watched(), 1u);
    loop.run();
    EXPECT_FALSE(seen.empty());
    loop.remove(p.fd[0]);
    // Modifying a descriptor not watched fails like epoll_ctl does.
    EXPECT_THROW(loop.modify(p.fd[0], EPOLLIN), sock::error);
}

TEST(EventLoop, RemovedDescriptorIsNotDispatched) {
    sock::event_loop loop;
    raw_pair watched, sentinel;
    int watched_calls = 0;
    handler hw, hs;
    hw.io = [&](std::uint32_t) { ++watched_calls; };
    hs.io = [&](std::uint32_t) { loop.stop(); };
    loop.add(watched.fd[0], EPOLLIN, hw);
    loop.remove(watched.fd[0]);
    watched.write_to(0);
    sentinel.write_to(0);
    loop.add(sentinel.fd[0], EPOLLIN, hs);  // readable too: the same epoll_wait reports both
    loop.run();
    EXPECT_EQ(watched_calls, 0);
    loop.remove(sentinel.fd[0]);
}

TEST(EventLoop, ForgetThenCloseAndTheNumberIsReusable) {
    sock::event_loop loop;
    std::optional<raw_pair> p;
    p.emplace();
    const int fd = p->fd[0];
    handler h;
    int calls = 0;
    h.io = [&](std::uint32_t) { ++calls; };
    loop.add(fd, EPOLLIN, h);
    loop.forget(fd);
    EXPECT_EQ(loop.watched(), 0u);
    loop.forget(fd);  // twice is harmless
    EXPECT_EQ(loop.watched(), 0u);
    p.reset();  // closes fd: the kernel drops it from epoll

    raw_pair q;  // most likely gets fd's number again; either way it must be addable
    handler hq;
    hq.io = [&](std::uint32_t) { loop.stop(); };
    loop.add(q.fd[0], EPOLLIN, hq);
    q.write_to(0);
    loop.run();
    EXPECT_EQ(calls, 0);
    loop.remove(q.fd[0]);
}

// Two descriptors readable in one batch; whichever handler runs first forgets and closes the
// other and destroys its handler. The other's event, already fetched, must not be dispatched.
TEST(EventLoop, HandlerRemovingAnotherInTheSameBatchStopsItsStaleEvent) {
    sock::event_loop loop;
    raw_pair pairs[2];
    bool alive[2] = {true, true};
    int calls_after_death = 0;
    int calls = 0;

    struct victim final : sock::io_handler {
        std::function<void()> fn;
        void on_io(std::uint32_t) override { fn(); }
    };
    std::optional<victim> handlers[2];
    for (int i = 0; i < 2; ++i) {
        handlers[i].emplace();
        handlers[i]->fn = [&, i] {
            if (!alive[i]) {
                ++calls_after_death;
                return;
            }
            ++calls;
            char c;
            EXPECT_EQ(::read(pairs[i].fd[0], &c, 1), 1);  // not readable any more
            const int other = 1 - i;
            loop.forget(pairs[other].fd[0]);
            pairs[other].close(0);
            alive[other] = false;
            handlers[other].reset();
            loop.post([&] { loop.stop(); });
        };
        pairs[i].write_to(0);
    }
    for (int i = 0; i < 2; ++i) loop.add(pairs[i].fd[0], EPOLLIN, *handlers[i]);
    loop.run();
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(calls_after_death, 0);
    EXPECT_EQ(loop.watched(), 1u);
    for (int i = 0; i < 2; ++i)
        if (alive[i]) loop.remove(pairs[i].fd[0]);
}

TEST(EventLoop, CancelAllCallsOnCancelOfEveryHandlerOnce) {
    sock::event_loop loop;
    raw_pair a, b, c;
    handler ha, hb, hc;
    int cancels[3] = {0, 0, 0};
    // a forgets itself and c; c is not called once forgotten.
    ha.cancel = [&] {
        ++cancels[0];
        loop.forget(a.fd[0]);
        loop.forget(c.fd[0]);
    };
    hb.cancel = [&] { ++cancels[1]; };
    hc.cancel = [&] { ++cancels[2]; };
    const bool a_first = a.fd[0] < c.fd[0];
    loop.add(a.fd[0], EPOLLIN, ha);
    loop.add(b.fd[0], EPOLLIN, hb);
    loop.add(c.fd[0], EPOLLIN, hc);
    loop.cancel_all();
    EXPECT_EQ(cancels[0], 1);
    EXPECT_EQ(cancels[1], 1);
    EXPECT_EQ(cancels[2], a_first ? 0 : 1);
    EXPECT_EQ(loop.watched(), 1u);
    loop.remove(b.fd[0]);
}

// A posted function that throws: the exception leaves run(); the functions that ran are done
// for good, and the rest of the batch runs on the next run(), in order, before later posts.
TEST(EventLoop, APostedFunctionThatThrowsLeavesTheRestOfItsBatchQueuedInOrder) {
    sock::event_loop loop;
    std::vector<int> ran;
    loop.post([&] { ran.push_back(1); });
    loop.post([&] {
        ran.push_back(2);
        throw std::runtime_error("posted");
    });
    loop.post([&] { ran.push_back(3); });
    EXPECT_THROW(loop.run(), std::runtime_error);
    EXPECT_EQ(ran, (std::vector<int>{1, 2}));
    loop.post([&] {
        ran.push_back(4);
        loop.stop();
    });
    EXPECT_NO_THROW(loop.run());
    EXPECT_EQ(ran, (std::vector<int>{1, 2, 3, 4}));
    // Nothing runs twice, however many wake-ups come later.
    for (int i = 0; i < 3; ++i) {
        loop.post([&] { loop.stop(); });
        EXPECT_NO_THROW(loop.run());
    }
    EXPECT_EQ(ran, (std::vector<int>{1, 2, 3, 4}));
}

// Posted work runs after the batch's I/O events: a posted function that throws leaves no
// fetched edge-triggered event undispatched.
TEST(EventLoop, APostedFunctionThatThrowsLosesNoEventOfItsBatch) {
    sock::event_loop loop;
    raw_pair p;
    int io_calls = 0;
    handler h;
    h.io = [&](std::uint32_t) { ++io_calls; };
    loop.add(p.fd[0], EPOLLIN | EPOLLET, h);
    loop.post([] { throw std::runtime_error("posted"); });
    p.write_to(0);  // the same epoll_wait reports the wake-up and this edge
    EXPECT_THROW(loop.run(), std::runtime_error);
    EXPECT_EQ(io_calls, 1);
    loop.remove(p.fd[0]);
}

}  // namespace
