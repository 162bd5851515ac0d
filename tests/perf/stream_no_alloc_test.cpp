// The buffered streams' hot path allocates nothing once warmed up: the reader's block and the
// writer's string keep their size, and the coroutine reader's frames come from the pool.
// Allocations are counted by replacing operator new in this test binary.

#include <sock/async_stream.hpp>
#include <sock/coro.hpp>
#include <sock/create.hpp>
#include <sock/stream.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <new>
#include <string_view>

namespace {
thread_local bool counting = false;
thread_local std::size_t allocations = 0;
}  // namespace

void* operator new(std::size_t n) {
    if (counting) ++allocations;
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using namespace std::chrono_literals;

constexpr std::string_view line = "a line of the kind a protocol sends\n";

/// Writes 50 lines, flushes, reads them back; returns how many came back intact.
int round(sock::buffered_writer<>& w, sock::buffered_reader<>& r) {
    for (int i = 0; i < 50; ++i) w.write(line);
    w.flush();
    int ok = 0;
    for (int i = 0; i < 50; ++i) ok += r.readline() == line;
    return ok;
}

TEST(StreamNoAlloc, BlockingReaderAndWriter) {
    auto [a, b] = sock::socketpair();
    a.settimeout(10s);
    b.settimeout(10s);  // a positive timeout: the reader's deadline path runs too
    sock::buffered_writer w(a);
    sock::buffered_reader r(b);
    for (int i = 0; i < 10; ++i) ASSERT_EQ(round(w, r), 50);
    int ok = 0;
    counting = true;
    for (int i = 0; i < 100; ++i) ok += round(w, r);
    counting = false;
    EXPECT_EQ(ok, 5000);
    EXPECT_EQ(allocations, 0u);
}

TEST(StreamNoAlloc, CoroutineReaderAndWriter) {
    sock::event_loop loop;
    auto [x, y] = sock::socketpair();
    sock::async_socket a(std::move(x), loop);
    sock::async_socket b(std::move(y), loop);
    a.settimeout(10s);
    b.settimeout(10s);
    int ok = 0;
    auto body = [&]() -> sock::task<> {
        sock::stream_writer w(a);
        sock::stream_reader r(b);
        for (int n = 0; n < 110; ++n) {
            if (n == 10) counting = true;  // after warming up
            for (int i = 0; i < 50; ++i) w.write(line);
            co_await w.drain();
            for (int i = 0; i < 50; ++i) ok += co_await r.readline() == line;
        }
        counting = false;
    };
    sock::run(loop, body());
    EXPECT_EQ(ok, 5500);
    EXPECT_EQ(allocations, 0u);
}

}  // namespace
