// The server's own counters (stats(), per loop, summed) and the metrics endpoint on a live
// server: /metrics, /healthz through a graceful stop, bad requests, scrapes under load.

#include "support.hpp"

#include <sock/metrics.hpp>
#include <sock/metrics_endpoint.hpp>

#include <atomic>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using engine_test::ask;
using engine_test::connect_to;
using engine_test::server_thread;
using engine_test::test_config;

/// Waits (bounded) until pred holds; false if it never did.
template <class Pred>
bool eventually(Pred pred) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

/// Waits (bounded) until connecting to where is refused: the listener has closed.
bool eventually_refused(const sock::address& where) {
    return eventually([&] {
        sock::socket late(sock::family::inet);
        std::error_code ec;
        late.connect(where, ec);
        return ec == std::errc::connection_refused;
    });
}

/// Sends raw bytes to the endpoint and reads the whole response, to its end of stream.
std::string http(const sock::address& where, std::string_view request) {
    auto s = connect_to(where);
    s.sendall(request);
    std::string response;
    for (std::string part; !(part = s.recv(65536)).empty();) response += part;
    return response;
}

std::string get(const sock::address& where, const std::string& path) {
    return http(where, "GET " + path + " HTTP/1.1\r\nHost: test\r\n\r\n");
}

std::string status_line(const std::string& response) { return response.substr(0, response.find("\r\n")); }

sock::metrics_endpoint_config endpoint_for(sock::server& srv) {
    sock::metrics_endpoint_config c;
    c.listen = sock::address("127.0.0.1", 0);
    c.routes.metrics = [&srv] {
        sock::metrics_text out;
        srv.write_metrics(out);
        return out.str();
    };
    c.routes.healthy = [&srv] { return !srv.stopping(); };
    return c;
}

std::atomic<std::size_t> loops_seen_mask{0};

sock::task<> note_loop_then_echo(sock::async_socket conn) {
    const auto loop = sock::server::current_loop();
    loops_seen_mask.fetch_or(loop < 8 ? std::size_t{1} << loop : std::size_t{1} << 8);
    co_await engine_test::echo_hi(std::move(conn));
}

TEST(ServerMetrics, EachLoopCountsWhatItAcceptsAndTheSumIsExact) {
    EXPECT_EQ(sock::server::current_loop(), sock::server::no_loop);
    loops_seen_mask = 0;
    server_thread srv(test_config({sock::address("127.0.0.1", 0)}, 2), note_loop_then_echo);
    EXPECT_EQ(srv->loops(), 2u);
    for (int i = 0; i < 20; ++i) ASSERT_EQ(ask(srv.address(), "x"), "hi:x");
    EXPECT_EQ(srv->stats().accepted, 20u);
    EXPECT_EQ(srv->accepted(), 20u);
    EXPECT_EQ(loops_seen_mask.load() & ~std::size_t{3}, 0u) << "a handler saw a loop number out of range";
    EXPECT_TRUE(eventually([&] { return srv->stats().active == 0; }));
    const auto s = srv->stats();
    EXPECT_EQ(s.accept_errors + s.handler_errors + s.paused_at_limit + s.paused_for_descriptors, 0u);
}

sock::task<> fail_after_reply(sock::async_socket conn) {
    co_await conn.sendall("bye");
    throw std::runtime_error("handler failed on purpose");
}

TEST(ServerMetrics, PausesAtTheLimitAndFailedHandlersAreCounted) {
    {
        auto config = test_config({sock::address("127.0.0.1", 0)});
        config.max_connections = 1;
        server_thread srv(std::move(config), engine_test::echo_hi);
        auto first = connect_to(srv.address());
        ASSERT_EQ(ask(first, "1"), "hi:1");
        auto second = connect_to(srv.address());  // waits in the listen queue
        second.sendall("2");
        EXPECT_TRUE(eventually([&] { return srv->stats().paused_at_limit >= 1; }));
        first.close();
        EXPECT_EQ(second.recv(100), "hi:2");
    }
    auto config = test_config({sock::address("127.0.0.1", 0)});
    config.log = [](std::string_view) {};
    server_thread srv(std::move(config), fail_after_reply);
    auto c = connect_to(srv.address());
    c.sendall("x");
    EXPECT_EQ(c.recv(100), "bye");
    EXPECT_TRUE(eventually([&] { return srv->stats().handler_errors == 1; }));
}

TEST(MetricsEndpoint, ServesTheServersMetricsAndHealth) {
    server_thread srv(test_config({sock::address("127.0.0.1", 0)}), engine_test::echo_hi);
    sock::metrics_endpoint endpoint(endpoint_for(*srv));
    for (int i = 0; i < 3; ++i) ASSERT_EQ(ask(srv.address(), "x"), "hi:x");
    const auto metrics = get(endpoint.address(), "/metrics");
    EXPECT_EQ(status_line(metrics), "HTTP/1.1 200 OK");
    EXPECT_NE(metrics.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), std::string::npos);
    EXPECT_NE(metrics.find("\nsock_connections_accepted_total 3\n"), std::string::npos) << metrics;
    EXPECT_EQ(status_line(get(endpoint.address(), "/healthz")), "HTTP/1.1 200 OK");
    EXPECT_EQ(status_line(get(endpoint.address(), "/nothing")), "HTTP/1.1 404 Not Found");
    EXPECT_EQ(status_line(http(endpoint.address(), "DELETE /metrics HTTP/1.0\r\n\r\n")),
              "HTTP/1.1 405 Method Not Allowed");
    EXPECT_EQ(status_line(http(endpoint.address(), "\x16\x03\x01 hello")), "HTTP/1.1 400 Bad Request");
    // A request with a body it never reads still gets its whole answer, not a reset.
    EXPECT_EQ(status_line(http(endpoint.address(),
                               "POST /metrics HTTP/1.0\r\nContent-Length: 50000\r\n\r\n" +
                                   std::string(50000, 'b'))),
              "HTTP/1.1 405 Method Not Allowed");
}

TEST(MetricsEndpoint, AClientThatSaysNothingGets408) {
    server_thread srv(test_config({sock::address("127.0.0.1", 0)}), engine_test::echo_hi);
    auto config = endpoint_for(*srv);
    config.timeout = 100ms;
    sock::metrics_endpoint endpoint(std::move(config));
    EXPECT_EQ(status_line(http(endpoint.address(), "GET /metr")), "HTTP/1.1 408 Request Timeout");
}

TEST(MetricsEndpoint, HealthIs503AllThroughAGracefulStopWhileTheListenerIsClosed) {
    auto config = test_config({sock::address("127.0.0.1", 0)});
    config.grace = 60s;  // the held connection keeps the server stopping until the test ends it
    server_thread srv(std::move(config), engine_test::echo_hi);
    sock::metrics_endpoint endpoint(endpoint_for(*srv));
    auto held = connect_to(srv.address());
    ASSERT_EQ(ask(held, "1"), "hi:1");
    EXPECT_EQ(status_line(get(endpoint.address(), "/healthz")), "HTTP/1.1 200 OK");

    srv->stop();
    const auto stopping = get(endpoint.address(), "/healthz");
    EXPECT_EQ(status_line(stopping), "HTTP/1.1 503 Service Unavailable");
    EXPECT_EQ(stopping.substr(stopping.find("\r\n\r\n") + 4), "stopping\n");
    // Once the server's listener is closed, the endpoint still answers, and still 503.
    EXPECT_TRUE(eventually_refused(srv.address()));
    EXPECT_EQ(status_line(get(endpoint.address(), "/healthz")), "HTTP/1.1 503 Service Unavailable");
    EXPECT_EQ(ask(held, "2"), "hi:2");  // the client in flight is still served
    EXPECT_FALSE(srv.finished_within(0ms));
    held.close();
    EXPECT_TRUE(srv.finished_within(20s));
}

TEST(MetricsEndpoint, ScrapesWhileLoadRunsSeeCountsThatOnlyGrow) {
    server_thread srv(test_config({sock::address("127.0.0.1", 0)}, 2), engine_test::echo_hi);
    sock::metrics_endpoint endpoint(endpoint_for(*srv));
    constexpr int clients = 4, each = 100;
    std::atomic<bool> done{false};
    std::atomic<int> scrapes{0};
    std::thread scraper([&] {
        std::uint64_t last = 0;
        while (!done.load()) {
            const auto body = get(endpoint.address(), "/metrics");
            const auto at = body.find("\nsock_connections_accepted_total ");
            ASSERT_NE(at, std::string::npos);
            const auto n = std::stoull(body.substr(at + 33));
            EXPECT_GE(n, last);
            last = n;
            ++scrapes;
        }
    });
    std::vector<std::thread> load;
    for (int t = 0; t < clients; ++t)
        load.emplace_back([&] {
            for (int i = 0; i < each; ++i) EXPECT_EQ(ask(srv.address(), "x"), "hi:x");
        });
    for (auto& t : load) t.join();
    done = true;
    scraper.join();
    EXPECT_GE(scrapes.load(), 1);
    EXPECT_NE(get(endpoint.address(), "/metrics").find("\nsock_connections_accepted_total 400\n"),
              std::string::npos);
}

std::size_t threads_of_this_process() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& t : std::filesystem::directory_iterator("/proc/self/task")) ++n;
    return n;
}

TEST(MetricsEndpoint, OnTheServersFirstLoopItNeedsNoThreadOfItsOwn) {
    std::optional<sock::metrics_endpoint> endpoint;  // outlives the server's run
    const auto before = threads_of_this_process();
    std::size_t with_endpoint = 0;
    server_thread srv(test_config({sock::address("127.0.0.1", 0)}), engine_test::echo_hi,
                      [&](sock::server& s) {
                          auto c = endpoint_for(s);
                          c.timeout = 100ms;
                          endpoint.emplace(std::move(c), s);
                          with_endpoint = threads_of_this_process();
                      });
    EXPECT_EQ(with_endpoint, before);
    for (int i = 0; i < 3; ++i) ASSERT_EQ(ask(srv.address(), "x"), "hi:x");
    const auto metrics = get(endpoint->address(), "/metrics");
    EXPECT_EQ(status_line(metrics), "HTTP/1.1 200 OK");
    EXPECT_NE(metrics.find("\nsock_connections_accepted_total 3\n"), std::string::npos) << metrics;
    // Scrapes are not connections of the server.
    EXPECT_EQ(srv->stats().accepted, 3u);
    EXPECT_EQ(status_line(get(endpoint->address(), "/healthz")), "HTTP/1.1 200 OK");
    EXPECT_EQ(status_line(http(endpoint->address(), "GET /metr")), "HTTP/1.1 408 Request Timeout");
}

TEST(MetricsEndpoint, OnTheFirstLoopHealthIs503ThroughTheStopAndItClosesWithTheLoop) {
    auto config = test_config({sock::address("127.0.0.1", 0)});
    config.grace = 60s;  // the held connection keeps the server stopping until the test ends it
    std::optional<sock::metrics_endpoint> endpoint;
    server_thread srv(std::move(config), engine_test::echo_hi,
                      [&](sock::server& s) { endpoint.emplace(endpoint_for(s), s); });
    auto held = connect_to(srv.address());
    ASSERT_EQ(ask(held, "1"), "hi:1");
    EXPECT_EQ(status_line(get(endpoint->address(), "/healthz")), "HTTP/1.1 200 OK");
    srv->stop();
    EXPECT_TRUE(eventually_refused(srv.address()));
    EXPECT_EQ(status_line(get(endpoint->address(), "/healthz")), "HTTP/1.1 503 Service Unavailable");
    EXPECT_EQ(ask(held, "2"), "hi:2");
    held.close();
    EXPECT_TRUE(srv.finished_within(20s));
    sock::socket late(sock::family::inet);
    std::error_code ec;
    late.connect(endpoint->address(), ec);
    EXPECT_EQ(ec, std::errc::connection_refused) << "the endpoint outlived its loop";
}

TEST(MetricsEndpoint, OnTheFirstLoopScrapesBeyondItsLimitWaitTheirTurn) {
    std::optional<sock::metrics_endpoint> endpoint;
    server_thread srv(test_config({sock::address("127.0.0.1", 0)}), engine_test::echo_hi,
                      [&](sock::server& s) {
                          auto c = endpoint_for(s);
                          c.max_connections = 1;
                          endpoint.emplace(std::move(c), s);
                      });
    auto slow = connect_to(endpoint->address());
    slow.sendall("GET /healthz HTTP/1.1\r\n");  // holds the one slot: its head is not done
    std::string second;
    std::atomic<bool> answered{false};
    std::thread scraper([&] {
        second = get(endpoint->address(), "/healthz");
        answered = true;
    });
    // Gives a wrong endpoint time to answer out of turn; a right one never does, so this
    // cannot fail on a slow machine, only miss a bug on one.
    std::this_thread::sleep_for(50ms);
    EXPECT_FALSE(answered.load());
    slow.sendall("Host: t\r\n\r\n");
    EXPECT_EQ(status_line(slow.recv(4096)), "HTTP/1.1 200 OK");
    slow.close();
    scraper.join();
    EXPECT_EQ(status_line(second), "HTTP/1.1 200 OK");
}

/// Answers each message with the number of the loop serving the connection, until the end.
sock::task<> say_loop(sock::async_socket conn) {
    std::error_code ec;
    for (;;) {
        auto msg = co_await conn.recv(100, ec);
        if (ec || msg.empty()) co_return;
        co_await conn.sendall(std::to_string(sock::server::current_loop()), ec);
        if (ec) co_return;
    }
}

// The endpoint lives on the first loop, but a stop must not end it while another loop still
// serves: /healthz says 503 until the server is done, not "connection refused".
TEST(MetricsEndpoint, OnTheFirstLoopItOutlivesThatLoopsClientsWhileAnotherLoopServes) {
    auto config = test_config({sock::address("127.0.0.1", 0)}, 2);
    config.grace = 60s;
    std::optional<sock::metrics_endpoint> endpoint;
    server_thread srv(std::move(config), say_loop,
                      [&](sock::server& s) { endpoint.emplace(endpoint_for(s), s); });
    // A client on the second loop, and none on the first (SO_REUSEPORT spreads them by hash).
    std::optional<sock::socket> held;
    for (int i = 0; i < 200 && !held; ++i) {
        auto c = connect_to(srv.address());
        if (ask(c, "x") == "1") held.emplace(std::move(c));
    }
    ASSERT_TRUE(held) << "no connection landed on the second loop";
    ASSERT_TRUE(eventually([&] { return srv->stats().active == 1; }));  // the first loop's ended
    srv->stop();
    EXPECT_TRUE(eventually_refused(srv.address()));
    EXPECT_EQ(status_line(get(endpoint->address(), "/healthz")), "HTTP/1.1 503 Service Unavailable");
    EXPECT_EQ(ask(*held, "y"), "1");
    held->close();
    EXPECT_TRUE(srv.finished_within(20s));
}

}  // namespace
