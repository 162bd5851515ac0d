// The server's contract with its process: a port already in use, signals whatever threads
// exist, failures out of run(), and a stop that leaves no connection behind.

#include "support.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using engine_test::ask;
using engine_test::connect_to;
using engine_test::echo_hi;
using engine_test::server_thread;
using engine_test::test_config;

// -- a port already in use --------------------------------------------------------------------

std::string bind_error(const sock::address& where, sock::server_config config) {
    config.listen = {where};
    try {
        sock::server s(std::move(config), echo_hi);
    } catch (const sock::error& e) {
        return e.what();
    }
    return "<no error>";
}

TEST(ServerPort, APortAnotherSocketListensOnIsAnError) {
    auto other = sock::create_server({"127.0.0.1", 0});  // as the tutorial's server.py would
    const auto where = other.getsockname();
    EXPECT_EQ(bind_error(where, test_config({}, 2)),
              "bind " + where.to_string() + ": Address already in use");
}

// Every loop of a server has its own SO_REUSEPORT listener; that must not let a second server
// (another process, typically) join the first one's port unless it asks to.
TEST(ServerPort, ASecondServerOnTheSamePortIsAnErrorUnlessAskedToShare) {
    server_thread first(test_config({sock::address("127.0.0.1", 0)}, 2), echo_hi);
    const auto where = first.address();
    EXPECT_EQ(bind_error(where, test_config({}, 2)),
              "bind " + where.to_string() + ": Address already in use");
    ASSERT_EQ(ask(where, "still"), "hi:still");

    auto sharing = test_config({where}, 2);
    sharing.reuse_port = true;
    server_thread second(std::move(sharing), echo_hi);
    EXPECT_EQ(second.address(), where);
    for (int i = 0; i < 20; ++i) EXPECT_EQ(ask(where, std::to_string(i)), "hi:" + std::to_string(i));
    EXPECT_EQ(first->accepted() + second->accepted(), 21u);
}

TEST(ServerPort, PortZeroIsSharedByTheLoopsOfOneServer) {
    server_thread srv(test_config({sock::address("127.0.0.1", 0)}, 3), echo_hi);
    EXPECT_NE(srv.address().port(), 0);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(ask(srv.address(), "x"), "hi:x");
}

// -- tcp_nodelay: set on the listeners, inherited by every connection --------------------------

sock::task<> say_nodelay(sock::async_socket conn) {
    std::error_code ec;
    (void)co_await conn.recv(64, ec);
    co_await conn.sendall(conn.raw().getsockopt(sock::opt::tcp_nodelay) ? "on" : "off", ec);
}

TEST(ServerOptions, TcpNodelayReachesEveryConnectionOfEveryListener) {
    sock::socket held(sock::family::inet6);  // as a service manager passes it
    held.bind({"::1", 0});
    held.listen(16);
    auto config = test_config({sock::address("127.0.0.1", 0)}, 2);
    config.inherited.push_back(held.dup());
    config.tcp_nodelay = true;
    server_thread srv(std::move(config), say_nodelay);
    for (int i = 0; i < 6; ++i) {
        EXPECT_EQ(ask(srv.address(0), "?"), "on") << i;
        EXPECT_EQ(ask(srv.address(1), "?"), "on") << i;
    }
}

TEST(ServerOptions, TcpNodelayIsOffByDefault) {
    server_thread srv(test_config({sock::address("127.0.0.1", 0)}, 2), say_nodelay);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(ask(srv.address(), "?"), "off") << i;
}

// TCP_NODELAY on a Unix socket fails (EOPNOTSUPP): a bound or passed Unix listener is left
// alone rather than failing the server.
TEST(ServerOptions, TcpNodelayLeavesUnixListenersAlone) {
    engine_test::temp_dir dir;
    sock::socket held(sock::family::local);
    held.bind(sock::address::unix_path(dir.path() + "/held"));
    held.listen(16);
    auto config = test_config({sock::address::unix_path(dir.path() + "/s")}, 1);
    config.inherited.push_back(held.dup());
    config.tcp_nodelay = true;
    server_thread srv(std::move(config), echo_hi);
    EXPECT_EQ(ask(srv.address(0), "x"), "hi:x");
    EXPECT_EQ(ask(srv.address(1), "y"), "hi:y");
}

// -- signals ----------------------------------------------------------------------------------

::sigset_t current_mask() {
    ::sigset_t m;
    ::pthread_sigmask(SIG_SETMASK, nullptr, &m);
    return m;
}

bool same_mask(const ::sigset_t& a, const ::sigset_t& b) {
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGUSR1})
        if (sigismember(&a, s) != sigismember(&b, s)) return false;
    return true;
}

sock::server_config signal_config() {
    auto c = test_config({sock::address("127.0.0.1", 0)}, 2);
    c.handle_signals = true;
    c.grace = 5s;
    return c;
}

// A thread the program started before the server (a logger, a pool) may be the one the
// kernel hands SIGTERM to; the server must still stop gracefully, not die by the default
// action. pthread_kill makes that thread the receiver for certain.
int sigterm_to_an_earlier_thread() {
    std::mutex m;
    std::condition_variable cv;
    bool quit = false;
    std::thread earlier([&] {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return quit; });
    });
    int code = 0;
    {
        sock::server srv(signal_config(), echo_hi);
        const auto where = srv.addresses().front();
        std::thread runner([&] { srv.run(); });
        if (ask(where, "up") != "hi:up") code = 1;
        ::pthread_kill(earlier.native_handle(), SIGTERM);
        runner.join();  // returns once the stop has drained
    }
    {
        std::lock_guard lock(m);
        quit = true;
    }
    cv.notify_all();
    earlier.join();
    return code;
}

TEST(ServerSignalDeathTest, SigtermToAThreadStartedBeforeTheServerStopsItGracefully) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(std::_Exit(sigterm_to_an_earlier_thread()), ::testing::ExitedWithCode(0), "");
}

// No thread's mask changes: not the one that builds the server, not the one that runs it.
TEST(ServerSignal, EveryThreadKeepsItsSignalMask) {
    const auto before = current_mask();
    {
        sock::server srv(signal_config(), echo_hi);
        EXPECT_TRUE(same_mask(current_mask(), before)) << "constructing changed the mask";
        bool runner_kept_its_mask = false;
        std::thread runner([&] {
            const auto mine = current_mask();
            srv.run();
            runner_kept_its_mask = same_mask(current_mask(), mine);
        });
        EXPECT_EQ(ask(srv.addresses().front(), "a"), "hi:a");
        srv.stop();
        runner.join();
        EXPECT_TRUE(runner_kept_its_mask) << "run() changed its thread's mask";
    }
    EXPECT_TRUE(same_mask(current_mask(), before)) << "the mask changed for good";
}

// The threads run() starts for loops 1.. block the stop signals, so that the kernel never
// hands one to a loop thread (a handler there would interrupt its epoll_wait, and under
// ThreadSanitizer a signal landing on a thread still starting is lost).
TEST(ServerSignal, TheLoopsOwnThreadsBlockTheStopSignals) {
    std::mutex m;
    std::map<std::size_t, bool> blocked;  // loop number -> SIGTERM blocked on its thread
    auto handler = [&](sock::async_socket conn) -> sock::task<> {
        {
            const auto mask = current_mask();
            std::lock_guard lock(m);
            blocked[sock::server::current_loop()] = sigismember(&mask, SIGTERM) == 1;
        }
        co_await echo_hi(std::move(conn));
    };
    auto config = signal_config();
    config.threads = 3;
    server_thread srv(std::move(config), handler);
    for (int i = 0; i < 300; ++i) {
        ASSERT_EQ(ask(srv.address(), "a"), "hi:a");
        std::lock_guard lock(m);
        if (blocked.size() == 3) break;
    }
    std::lock_guard lock(m);
    ASSERT_GE(blocked.size(), 2u) << "300 clients, all served by one loop";
    for (const auto& [loop, is_blocked] : blocked) {
        if (loop == 0) EXPECT_FALSE(is_blocked) << "loop 0 runs on run()'s caller, its mask untouched";
        else EXPECT_TRUE(is_blocked) << "loop " << loop;
    }
}

TEST(ServerSignal, SighupCallsOnHangupAndNeverTerminates) {
    std::atomic<int> hangups{0};
    std::mutex m;
    std::vector<std::string> log;
    {
        auto config = signal_config();
        config.on_hangup = [&] { hangups.fetch_add(1); };
        server_thread srv(std::move(config), echo_hi);
        ASSERT_EQ(ask(srv.address(), "a"), "hi:a");
        ::kill(::getpid(), SIGHUP);
        for (int i = 0; i < 500 && hangups.load() == 0; ++i) std::this_thread::sleep_for(10ms);
        EXPECT_EQ(hangups.load(), 1);
        EXPECT_EQ(ask(srv.address(), "b"), "hi:b");  // still serving
    }
    {
        auto config = signal_config();
        config.log = [&](std::string_view line) {
            std::lock_guard lock(m);
            log.emplace_back(line);
        };
        server_thread srv(std::move(config), echo_hi);
        ::kill(::getpid(), SIGHUP);
        bool logged = false;
        for (int i = 0; i < 500 && !logged; ++i) {
            std::this_thread::sleep_for(10ms);
            std::lock_guard lock(m);
            logged = !log.empty();
        }
        std::lock_guard lock(m);
        ASSERT_FALSE(log.empty());
        EXPECT_EQ(log.front(), "received SIGHUP: nothing to reload, ignored");
        EXPECT_EQ(ask(srv.address(), "c"), "hi:c");
    }
    // Once no server handles signals, the previous action is back.
    struct ::sigaction now {};
    ::sigaction(SIGHUP, nullptr, &now);
    EXPECT_EQ(now.sa_handler, SIG_DFL);
}

// -- failures out of run() --------------------------------------------------------------------

// run()'s own thread cannot have a second event_loop: the failure reaches the caller, with
// the other loop (already running on its thread) stopped and joined, not std::terminate.
TEST(ServerRun, ALoopThatCannotStartFailsRunAndStopsTheOthers) {
    sock::server srv(test_config({sock::address("127.0.0.1", 0)}, 3), echo_hi);
    sock::event_loop mine;  // this thread's loop: the server's first loop cannot be made here
    EXPECT_THROW(srv.run(), std::logic_error);
    EXPECT_EQ(srv.active(), 0u);
}

// Every loop fails to start (no descriptor for epoll): the first failure is rethrown once
// all are joined.
TEST(ServerRun, OutOfDescriptorsForEveryLoop) {
#ifdef SOCK_TEST_UBSAN
    GTEST_SKIP() << "UBSan needs descriptors of its own";
#endif
    sock::server srv(test_config({sock::address("127.0.0.1", 0)}, 3), echo_hi);
    ::rlimit saved{};
    ::getrlimit(RLIMIT_NOFILE, &saved);
    ::rlimit low = saved;
    low.rlim_cur = static_cast<rlim_t>(engine_test::lowest_free_fd());
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
    std::string what;
    try {
        srv.run();
    } catch (const sock::error& e) {
        what = e.what();
    }
    ::setrlimit(RLIMIT_NOFILE, &saved);
    EXPECT_EQ(what.rfind("epoll_create1: ", 0), 0u) << what;
}

// -- a stop leaves nothing behind -------------------------------------------------------------

struct witness {
    std::atomic<int>& destroyed;
    ~witness() { destroyed.fetch_add(1); }
};

// Handlers waiting in any library awaitable (here sleep) are woken by the stop once the grace
// period is over, unwind, and their destructors run.
TEST(ServerStopUnwinds, SleepingHandlersUnwindAfterTheGracePeriod) {
    std::atomic<int> destroyed{0};
    const int fds_before = engine_test::open_fds();
    {
        auto config = test_config({sock::address("127.0.0.1", 0)}, 2);
        config.grace = 50ms;
        config.defer_accept = false;  // the handlers speak first
        server_thread srv(std::move(config), [&](sock::async_socket conn) -> sock::task<> {
            witness w{destroyed};
            co_await conn.sendall("in");
            co_await sock::sleep(1h);
        });
        std::vector<sock::socket> clients;
        for (int i = 0; i < 4; ++i) {
            clients.push_back(connect_to(srv.address()));
            EXPECT_EQ(clients.back().recv(10), "in");
        }
        srv->stop();
        EXPECT_TRUE(srv.finished_within(20s));
        EXPECT_EQ(destroyed.load(), 4);
        for (auto& c : clients) EXPECT_EQ(c.recv(10), "");  // closed by the server
    }
    EXPECT_EQ(engine_test::open_fds(), fds_before);
}

// A handler that swallows the cancellation and waits again is destroyed after the last call:
// no frame and no descriptor outlives the server.
TEST(ServerStopUnwinds, HandlersThatIgnoreCancellationAreDestroyed) {
    std::atomic<int> destroyed{0};
    const int fds_before = engine_test::open_fds();
    {
        auto config = test_config({sock::address("127.0.0.1", 0)});
        config.grace = 10ms;
        config.defer_accept = false;
        config.log = [](std::string_view) {};
        server_thread srv(std::move(config), [&](sock::async_socket conn) -> sock::task<> {
            witness w{destroyed};
            co_await conn.sendall("in");
            for (;;) {
                try {
                    co_await sock::sleep(1h);
                } catch (const sock::error&) {
                }
            }
        });
        auto a = connect_to(srv.address());
        auto b = connect_to(srv.address());
        EXPECT_EQ(a.recv(10), "in");
        EXPECT_EQ(b.recv(10), "in");
        srv->stop();
        EXPECT_TRUE(srv.finished_within(20s));
        EXPECT_EQ(destroyed.load(), 2);
        EXPECT_EQ(srv->active(), 0u);
        EXPECT_EQ(a.recv(10), "");
    }
    EXPECT_EQ(engine_test::open_fds(), fds_before);
}

}  // namespace
