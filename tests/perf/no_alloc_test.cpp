// The fast path costs no heap allocation per connection beyond the (pooled) coroutine frame:
// counted by replacing operator new in this test binary.

#include <sock/create.hpp>
#include <sock/server.hpp>

#include <gtest/gtest.h>

#include <atomic>
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

void one_greeting(std::uint16_t port) {
    auto c = sock::create_connection({"127.0.0.1", port});
    c.sendall("1");
    std::string reply;
    for (std::string part; !(part = c.recv(64)).empty();) reply += part;
    ASSERT_EQ(reply, "welcome to server!");  // and the server has closed: its handler is done
}

TEST(FastPath, NoAllocationPerConnection) {
    sock::server_config config;
    config.listen = {{"127.0.0.1", 0}};
    config.threads = 1;
    config.handle_signals = false;
    sock::server server(std::move(config), greet);
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

}  // namespace
