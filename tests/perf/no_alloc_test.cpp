// The fast path costs no heap allocation per connection beyond the (pooled) coroutine frame:
// counted by replacing operator new in this test binary.

#include <sock/create.hpp>
#include <sock/metrics.hpp>
#include <sock/server.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <string_view>
#include <thread>

namespace {
std::atomic<std::size_t> server_allocations{0};
thread_local bool on_server_thread = false;
}  // namespace

void* operator new(std::size_t n) {
    if (on_server_thread) server_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

sock::task<> greet(sock::async_socket conn) {
    on_server_thread = true;
    conn.settimeout(5.0);
    char buf[1025];
    const auto n = co_await conn.recv_into(buf);
    co_await conn.sendall(std::string_view(buf, n) == "1" ? "welcome to server!" : "please go out!");
}

/// What greet-server counts with --metrics: a reply counter and a latency histogram per loop.
struct counted {
    sock::loop_counter replies;
    sock::loop_histogram latency{sock::latency_buckets()};
};
sock::per_loop<counted>* counts = nullptr;

sock::task<> counted_greet(sock::async_socket conn) {
    const auto start = conn.loop()->now();
    co_await greet(std::move(conn));
    auto& mine = (*counts)[sock::server::current_loop()];
    mine.replies.add();
    mine.latency.observe(std::chrono::steady_clock::now() - start);
}

void one_greeting(std::uint16_t port) {
    auto c = sock::create_connection({"127.0.0.1", port});
    c.sendall("1");
    std::string reply;
    for (std::string part; !(part = c.recv(64)).empty();) reply += part;
    ASSERT_EQ(reply, "welcome to server!");  // and the server has closed: its handler is done
}

void expect_no_allocation_per_connection(sock::connection_handler handler) {
    sock::server_config config;
    config.listen = {{"127.0.0.1", 0}};
    config.threads = 1;
    config.handle_signals = false;
    sock::server server(std::move(config), std::move(handler));
    const auto port = server.addresses().front().port();
    std::thread loop([&] {
        on_server_thread = true;
        server.run();
    });

    for (int i = 0; i < 300; ++i) one_greeting(port);  // warm up: pools, vectors, lists
    const auto before = server_allocations.load();
    constexpr int measured = 1000;
    for (int i = 0; i < measured; ++i) one_greeting(port);
    const auto after = server_allocations.load();
    server.stop();
    loop.join();

    EXPECT_EQ(server.accepted(), 1300u);
    // A handful at most (a vector growing once); never one per connection.
    EXPECT_LE(after - before, 5u) << (after - before) << " allocations for " << measured
                                  << " connections";
}

TEST(FastPath, NoAllocationPerConnection) { expect_no_allocation_per_connection(greet); }

TEST(FastPath, CountingPerLoopAllocatesNothingEither) {
    sock::per_loop<counted> per_loop(1);
    counts = &per_loop;
    expect_no_allocation_per_connection(counted_greet);
    EXPECT_EQ(per_loop[0].replies.value(), 1300u);
    sock::histogram_snapshot latency;
    per_loop[0].latency.add_to(latency);
    std::uint64_t observed = 0;
    for (auto n : latency.counts) observed += n;
    EXPECT_EQ(observed, 1300u);
    counts = nullptr;
}

}  // namespace
