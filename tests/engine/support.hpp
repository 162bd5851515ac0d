#pragma once

// Helpers shared by the engine tests: loopback pairs, a server on its own thread, blocking
// clients, descriptor counts, and an awaitable that yields once to the loop.

#include <sock/sock.hpp>
#include <sock/async_socket.hpp>
#include <sock/coro.hpp>
#include <sock/event_loop.hpp>
#include <sock/server.hpp>
#include <sock/task.hpp>

#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <coroutine>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

namespace engine_test {

using test::temp_dir;

using namespace std::chrono_literals;

/// Every blocking call of a test client is bounded by this: a hang fails instead of blocking.
inline constexpr auto client_timeout = 10s;

/// A connected TCP pair over 127.0.0.1, both blocking: {accepted side, connecting side}.
inline std::pair<sock::socket, sock::socket> tcp_pair() {
    sock::socket l(sock::family::inet, sock::kind::stream);
    l.bind(sock::address("127.0.0.1", 0));
    l.listen(4);
    sock::socket c(sock::family::inet, sock::kind::stream);
    c.settimeout(client_timeout);
    c.connect(l.getsockname());
    auto accepted = l.accept().first;
    accepted.settimeout(client_timeout);
    return {std::move(accepted), std::move(c)};
}

/// Descriptors open in this process now.
inline int open_fds() {
    int n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (const ::dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
        ::closedir(d);
        --n;  // the directory's own descriptor
    }
    return n;
}

/// Counts its own destruction: proves a frame's locals were destroyed.
struct witness {
    int* destroyed;
    explicit witness(int* d) : destroyed(d) {}
    witness(const witness&) = delete;
    witness& operator=(const witness&) = delete;
    ~witness() { ++*destroyed; }
};

/// The lowest descriptor number free now: a soft limit of it makes the next open fail.
inline int lowest_free_fd() {
    const int fd = ::dup(0);
    ::close(fd);
    return fd;
}

/// Raises the soft descriptor limit to at least `want` (up to the hard limit); true if it is.
inline bool ensure_fd_limit(rlim_t want) {
    ::rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return false;
    if (lim.rlim_cur >= want) return true;
    lim.rlim_cur = lim.rlim_max == RLIM_INFINITY || lim.rlim_max >= want ? want : lim.rlim_max;
    return ::setrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur >= want;
}

/// `co_await engine_test::yield_to(loop)`: resumes through loop.post, so everything posted
/// before (from any thread) runs first.
struct yield_to {
    sock::event_loop& loop;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) { loop.post([h] { h.resume(); }); }
    void await_resume() const noexcept {}
};

/// A blocking client connected to addr, every call bounded by client_timeout.
inline sock::socket connect_to(const sock::address& addr) {
    return sock::create_connection(addr, client_timeout);
}

/// Sends msg and returns the first reply read (at most 64 KiB).
inline std::string ask(sock::socket& s, std::string_view msg) {
    s.sendall(msg);
    return s.recv(65536);
}

/// Connects, sends msg, returns the reply.
inline std::string ask(const sock::address& addr, std::string_view msg) {
    auto s = connect_to(addr);
    return ask(s, msg);
}

/// A sock::server running on its own thread; stops (gracefully) and joins on destruction.
class server_thread {
public:
    /// setup runs before run() starts (server::add_service and what builds on it).
    server_thread(sock::server_config config, sock::connection_handler handler,
                  const std::function<void(sock::server&)>& setup = {})
        : server_(std::move(config), std::move(handler)) {
        if (setup) setup(server_);
        done_ = std::async(std::launch::async, [this] { server_.run(); });
    }
    ~server_thread() {
        server_.stop();
        done_.wait();
    }
    server_thread(const server_thread&) = delete;
    server_thread& operator=(const server_thread&) = delete;

    sock::server& operator*() noexcept { return server_; }
    sock::server* operator->() noexcept { return &server_; }
    const sock::address& address(std::size_t i = 0) const { return server_.addresses().at(i); }

    /// True once run() has returned (rethrowing what it threw); waits at most `limit`.
    bool finished_within(std::chrono::milliseconds limit) {
        if (done_.wait_for(limit) != std::future_status::ready) return false;
        done_.get();
        done_ = std::async(std::launch::deferred, [] {});
        return true;
    }

private:
    sock::server server_;
    std::future<void> done_;
};

/// A server config for tests: signals left alone, one loop, given addresses.
inline sock::server_config test_config(std::vector<sock::address> listen, unsigned threads = 1) {
    sock::server_config c;
    c.listen = std::move(listen);
    c.threads = threads;
    c.handle_signals = false;
    return c;
}

/// A handler that answers every message with "hi:" and the message, until end of stream.
inline sock::task<> echo_hi(sock::async_socket conn) {
    std::error_code ec;
    for (;;) {
        auto msg = co_await conn.recv(65536, ec);
        if (ec || msg.empty()) co_return;
        co_await conn.sendall("hi:" + msg, ec);
        if (ec) co_return;
    }
}


}  // namespace engine_test
