// The server: where it listens, several loops, idle clients next to active ones, resets and
// floods. Limits are in server_limits_test.cpp, stopping in server_stop_test.cpp.

#include "support.hpp"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
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

bool ipv6_loopback_available() {
    try {
        sock::socket s(sock::family::inet6);
        s.bind(sock::address("::1", 0));
        return true;
    } catch (const sock::error&) {
        return false;
    }
}

TEST(Server, ServesOnInet) {
    server_thread srv(test_config({sock::address("127.0.0.1", 0)}), echo_hi);
    EXPECT_EQ(srv.address().host(), "127.0.0.1");
    EXPECT_NE(srv.address().port(), 0);
    EXPECT_EQ(ask(srv.address(), "x"), "hi:x");
    EXPECT_EQ(srv->accepted(), 1u);
}

TEST(Server, ServesOnInet6) {
    if (!ipv6_loopback_available()) GTEST_SKIP() << "no [::1] here";
    server_thread srv(test_config({sock::address("::1", 0)}, 2), echo_hi);
    EXPECT_EQ(srv.address().family(), sock::family::inet6);
    EXPECT_EQ(ask(srv.address(), "six"), "hi:six");
}

TEST(Server, ServesOnAUnixPathAndInetAtOnce) {
    engine_test::temp_dir dir;
    const auto path = sock::address::unix_path(dir.file("s.sock"));
    server_thread srv(test_config({path, sock::address("127.0.0.1", 0)}, 2), echo_hi);
    ASSERT_EQ(srv->addresses().size(), 2u);
    EXPECT_EQ(srv.address(0), path);
    for (int i = 0; i < 10; ++i) {
        sock::socket u(sock::family::local);
        u.settimeout(engine_test::client_timeout);
        u.connect(path);
        EXPECT_EQ(ask(u, "u"), "hi:u");
        EXPECT_EQ(ask(srv.address(1), "i"), "hi:i");
    }
}

// Many clients at once over several loops: every one is answered, and the work is spread.
class ServerThreads : public ::testing::TestWithParam<unsigned> {};

TEST_P(ServerThreads, ManyClientsAllServed) {
    std::mutex m;
    std::set<std::thread::id> loops;
    auto handler = [&](sock::async_socket conn) {
        {
            std::lock_guard lock(m);
            loops.insert(std::this_thread::get_id());
        }
        return echo_hi(std::move(conn));
    };
    server_thread srv(test_config({sock::address("127.0.0.1", 0)}, GetParam()), handler);
    constexpr int clients = 8, rounds = 40;
    std::atomic<int> right{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
        threads.emplace_back([&, c] {
            for (int r = 0; r < rounds; ++r) {
                const auto msg = std::to_string(c) + "." + std::to_string(r);
                if (ask(srv.address(), msg) == "hi:" + msg) ++right;
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(right.load(), clients * rounds);
    EXPECT_EQ(srv->accepted(), static_cast<std::size_t>(clients * rounds));
    std::lock_guard lock(m);
    EXPECT_GE(loops.size(), 2u) << "320 connections all went to one loop";
    EXPECT_LE(loops.size(), GetParam());
}

INSTANTIATE_TEST_SUITE_P(Loops, ServerThreads, ::testing::Values(2u, 4u));

/// Counts handlers that have started, so a test can wait for them without sleeping.
struct started_count {
    std::mutex m;
    std::condition_variable cv;
    int n = 0;
    void add() {
        std::lock_guard lock(m);
        ++n;
        cv.notify_all();
    }
    bool wait_for(int want) {
        std::unique_lock lock(m);
        return cv.wait_for(lock, 30s, [&] { return n >= want; });
    }
};

constexpr int idle_clients = 1000;

// Without TCP_DEFER_ACCEPT every idle client is accepted and its handler waits in recv; one
// more client is answered meanwhile.
TEST(Server, AClientIsServedWhileAThousandAcceptedClientsIdle) {
    if (!engine_test::ensure_fd_limit(4 * idle_clients)) GTEST_SKIP() << "descriptor limit too low";
    started_count started;
    auto handler = [&](sock::async_socket conn) {
        started.add();
        return echo_hi(std::move(conn));
    };
    auto config = test_config({sock::address("127.0.0.1", 0)}, 2);
    config.defer_accept = false;
    server_thread srv(std::move(config), handler);
    std::vector<sock::socket> idle;
    for (int i = 0; i < idle_clients; ++i) idle.push_back(connect_to(srv.address()));
    ASSERT_TRUE(started.wait_for(idle_clients)) << "only " << started.n << " handlers started";
    EXPECT_EQ(srv->active(), static_cast<std::size_t>(idle_clients));
    {
        auto busy = connect_to(srv.address());
        EXPECT_EQ(ask(busy, "busy"), "hi:busy");
        EXPECT_EQ(srv->active(), static_cast<std::size_t>(idle_clients) + 1);  // none has left
    }
    // And the idle ones are served when they speak.
    for (std::size_t i = 0; i < idle.size(); i += 97) EXPECT_EQ(ask(idle[i], "late"), "hi:late");
}

// With TCP_DEFER_ACCEPT (the default) idle clients wait in the kernel until they send; an
// active client is answered meanwhile, and each idle one is answered once it speaks.
TEST(Server, AClientIsServedWhileAThousandDeferredClientsIdle) {
    if (!engine_test::ensure_fd_limit(4 * idle_clients)) GTEST_SKIP() << "descriptor limit too low";
    server_thread srv(test_config({sock::address("127.0.0.1", 0)}, 2), echo_hi);
    std::vector<sock::socket> idle;
    for (int i = 0; i < idle_clients; ++i) idle.push_back(connect_to(srv.address()));
    EXPECT_EQ(ask(srv.address(), "busy"), "hi:busy");
    std::size_t right = 0;
    for (auto& s : idle) s.sendall("late");
    for (auto& s : idle) right += s.recv(100) == "hi:late";
    EXPECT_EQ(right, static_cast<std::size_t>(idle_clients));
}

/// Reads lines of any length: answers "ok N\n" for each, N the bytes before its newline.
sock::task<> count_lines(sock::async_socket conn) {
    std::error_code ec;
    conn.settimeout(std::nullopt);
    std::vector<char> buf(65536);
    std::size_t line = 0;
    for (;;) {
        const auto n = co_await conn.recv_into(buf, ec);
        if (ec || n == 0) co_return;
        for (std::size_t i = 0; i < n; ++i) {
            if (buf[i] != '\n') {
                ++line;
                continue;
            }
            co_await conn.sendall("ok " + std::to_string(line) + "\n", ec);
            if (ec) co_return;
            line = 0;
        }
    }
}

void reset_close(sock::socket& s) {
    s.setsockopt(sock::opt::linger, sock::opt::linger_t(0s));
    s.close();
}

// Clients that reset their connections and clients that send 10 MB at once, while ordinary
// clients are answered correctly; afterwards nothing is left open.
TEST(Server, ResetsAndFloodsDoNotDisturbOtherClients) {
    std::atomic<int> log_lines{0};
    auto config = test_config({sock::address("127.0.0.1", 0)}, 2);
    config.grace = 60s;  // stop() must return because the handlers ended, not by cancelling
    config.log = [&](std::string_view) { ++log_lines; };
    server_thread srv(std::move(config), count_lines);
    const auto where = srv.address();
    constexpr std::size_t flood = 10 << 20;

    std::atomic<int> floods_ok{0}, normal_ok{0};
    std::vector<std::thread> threads;
    for (int f = 0; f < 2; ++f) {
        threads.emplace_back([&] {
            auto s = connect_to(where);
            s.sendall(std::string(flood, 'f') + "\n");
            std::string reply;
            while (reply.find('\n') == std::string::npos) {
                auto part = s.recv(100);
                if (part.empty()) break;
                reply += part;
            }
            floods_ok += reply == "ok " + std::to_string(flood) + "\n";
        });
    }
    threads.emplace_back([&] {  // floods half, then resets
        auto s = connect_to(where);
        s.sendall(std::string(flood / 2, 'r'));
        reset_close(s);
    });
    threads.emplace_back([&] {
        for (int i = 0; i < 30; ++i) {
            auto s = connect_to(where);
            s.sendall("abc");
            reset_close(s);
        }
    });
    threads.emplace_back([&] {
        for (int i = 0; i < 50; ++i) {
            auto s = connect_to(where);
            normal_ok += ask(s, "hello\n") == "ok 5\n";
            normal_ok += ask(s, "again!\n") == "ok 6\n";
        }
    });
    for (auto& t : threads) t.join();
    EXPECT_EQ(floods_ok.load(), 2);
    EXPECT_EQ(normal_ok.load(), 100);
    srv->stop();
    EXPECT_TRUE(srv.finished_within(20s)) << "handlers still open long after every client left";
    EXPECT_EQ(srv->active(), 0u);
    EXPECT_EQ(log_lines.load(), 0);  // resets are the clients' business, not the server's
}

}  // namespace
