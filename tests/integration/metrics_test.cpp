// greet-server --metrics: a live scrape after known greetings, promtool's verdict on it,
// /healthz through a graceful stop, and the option's usage errors.

#include "programs.hpp"

#include <sock/create.hpp>
#include <sock/socket.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

namespace {

using namespace greet_test;
using namespace std::chrono_literals;

/// greet-server with --metrics on a free port, and that port, from its second line.
struct metered {
    server s;
    std::uint16_t metrics_port = 0;
};

metered start_metered(std::vector<std::string> args) {
    args.insert(args.end(), {"--host", "127.0.0.1", "--port", "0", "--quiet", "--metrics", "127.0.0.1:0"});
    metered m{start_greet_server(args)};
    const auto line = m.s.process->read_line(stream::out, 10s);
    const std::string prefix = "metrics on http://127.0.0.1:";
    if (!line || line->rfind(prefix, 0) != 0 || !line->ends_with("/metrics"))
        throw std::runtime_error("no metrics line: " + line.value_or("") + " " + m.s.process->err());
    m.metrics_port = static_cast<std::uint16_t>(std::stoul(line->substr(prefix.size())));
    return m;
}

/// GET path over HTTP/1.1: {status line, body}.
std::pair<std::string, std::string> get(std::uint16_t port, const std::string& path) {
    auto c = sock::create_connection({"127.0.0.1", port}, 10s);
    c.settimeout(10.0);
    c.sendall("GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: metrics_test\r\n\r\n");
    std::string response;
    for (std::string part; !(part = c.recv(65536)).empty();) response += part;
    const auto head_end = response.find("\r\n\r\n");
    if (head_end == std::string::npos) return {response, ""};
    return {response.substr(0, response.find("\r\n")), response.substr(head_end + 4)};
}

/// The value of the sample written exactly as `series` ("name{label=\"v\"}"), if there is one.
std::optional<double> value_of(const std::string& exposition, const std::string& series) {
    const auto at = exposition.find("\n" + series + " ");
    if (at == std::string::npos) return std::nullopt;
    return std::stod(exposition.substr(at + series.size() + 2));
}

/// Scrapes until `series` reads `want` (counters settle as connections end), at most 10 s.
bool settles(std::uint16_t port, const std::string& series, double want) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    do {
        if (value_of(get(port, "/metrics").second, series) == want) return true;
        std::this_thread::sleep_for(10ms);
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
}

TEST(GreetMetrics, ALiveScrapeCountsExactlyWhatWasServed) {
    auto m = start_metered({"--threads", "2", "--timeout", "0.2"});
    for (int i = 0; i < 5; ++i) ASSERT_EQ(greet_once(m.s.port, "1"), "welcome to server!");
    for (int i = 0; i < 3; ++i) ASSERT_EQ(greet_once(m.s.port, "x"), "please go out!");
    {
        // Says nothing: once accepted (TCP_DEFER_ACCEPT makes the kernel wait a little), it
        // times out after 0.2 s and is closed without a reply.
        auto silent = sock::create_connection({"127.0.0.1", m.s.port}, 10s);
        EXPECT_TRUE(settles(m.metrics_port, "greet_timeouts_total", 1));
    }
    ASSERT_TRUE(settles(m.metrics_port, "sock_connections_active", 0));
    const auto [status, body] = get(m.metrics_port, "/metrics");
    EXPECT_EQ(status, "HTTP/1.1 200 OK");
    EXPECT_EQ(value_of(body, "sock_connections_accepted_total"), 9);
    EXPECT_EQ(value_of(body, "greet_replies_total{kind=\"welcome\"}"), 5);
    EXPECT_EQ(value_of(body, "greet_replies_total{kind=\"go_out\"}"), 3);
    EXPECT_EQ(value_of(body, "greet_timeouts_total"), 1);
    for (const char* call : {"recv", "sendall", "recvfrom", "sendto"})
        EXPECT_EQ(value_of(body, std::string("greet_errors_total{call=\"") + call + "\"}"), 0) << call;
    EXPECT_EQ(value_of(body, "sock_errors_total{call=\"accept\"}"), 0);
    EXPECT_EQ(value_of(body, "sock_accept_pauses_total{reason=\"limit\"}"), 0);
    EXPECT_EQ(value_of(body, "greet_greeting_duration_seconds_count"), 8);
    EXPECT_EQ(value_of(body, "greet_greeting_duration_seconds_bucket{le=\"+Inf\"}"), 8);
    EXPECT_GT(value_of(body, "greet_greeting_duration_seconds_sum").value_or(0), 0);
    m.s.process->send_signal(SIGTERM);
    EXPECT_EQ(m.s.process->wait(20s), 0) << m.s.process->err();
}

TEST(GreetMetrics, PromtoolAcceptsALiveScrape) {
    const auto found = run({"sh", "-c", "command -v promtool"});
    if (found.exit_code != 0) GTEST_SKIP() << "promtool not installed (scripts/deps.sh installs prometheus)";
    auto m = start_metered({"--threads", "2"});
    ASSERT_EQ(greet_once(m.s.port, "1"), "welcome to server!");
    ASSERT_EQ(greet_once(m.s.port, "x"), "please go out!");
    const auto body = get(m.metrics_port, "/metrics").second;
    temp_dir dir;
    const auto file = dir.path() + "/scrape.txt";
    std::ofstream(file) << body;
    const auto checked = run({"sh", "-c", "promtool check metrics < " + file});
    EXPECT_EQ(checked.exit_code, 0) << checked.out << checked.err << "\n" << body;
    EXPECT_EQ(checked.out + checked.err, "") << "promtool has remarks";
}

TEST(GreetMetrics, HealthIs503FromTheStopUntilTheExit) {
    auto m = start_metered({"--timeout", "60"});
    EXPECT_EQ(get(m.metrics_port, "/healthz"), std::make_pair(std::string("HTTP/1.1 200 OK"), std::string("ok\n")));
    // A client in flight keeps the server in its graceful stop (up to its 5 s grace).
    auto held = sock::create_connection({"127.0.0.1", m.s.port}, 10s);
    held.settimeout(10.0);
    ASSERT_TRUE(settles(m.metrics_port, "sock_connections_active", 1));
    ASSERT_TRUE(wait_until_handled(m.s.process->pid(), SIGTERM, 10s));
    m.s.process->send_signal(SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    std::pair<std::string, std::string> health;
    do {
        health = get(m.metrics_port, "/healthz");
    } while (health.first == "HTTP/1.1 200 OK" && std::chrono::steady_clock::now() < deadline);
    EXPECT_EQ(health, std::make_pair(std::string("HTTP/1.1 503 Service Unavailable"), std::string("stopping\n")));
    // 503 comes first by design (a front door stops sending before the listener closes);
    // the listener closes on each loop soon after.
    std::error_code ec;
    const auto closing = std::chrono::steady_clock::now() + 10s;
    do {
        sock::socket late(sock::family::inet);
        late.connect({"127.0.0.1", m.s.port}, ec);
        if (!ec) std::this_thread::sleep_for(10ms);
    } while (!ec && std::chrono::steady_clock::now() < closing);
    EXPECT_EQ(ec, std::errc::connection_refused) << "the listener is still open";
    EXPECT_EQ(get(m.metrics_port, "/healthz").first, "HTTP/1.1 503 Service Unavailable");
    held.sendall("1");
    std::string reply;
    for (std::string part; !(part = held.recv(1024)).empty();) reply += part;
    EXPECT_EQ(reply, "welcome to server!");
    EXPECT_EQ(m.s.process->wait(20s), 0) << m.s.process->err();
}

TEST(GreetMetrics, ABadAddressIsAUsageErrorAndATakenPortARuntimeOne) {
    for (const char* bad : {"9100", "[::1", "::1:9100", "localhost:99999", "localhost:", ":9100"}) {
        const auto r = run({bin("greet-server"), "--port", "0", "--metrics", bad});
        EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.err;
        EXPECT_NE(r.err.find("--metrics"), std::string::npos) << r.err;
        EXPECT_EQ(count_lines(r.err), 1u) << r.err;
    }
    sock::socket taken(sock::family::inet);
    taken.bind({"127.0.0.1", 0});
    taken.listen(1);
    const auto port = std::to_string(taken.getsockname().port());
    const auto r = run({bin("greet-server"), "--host", "127.0.0.1", "--port", "0", "--metrics", "127.0.0.1:" + port});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "greet-server: bind 127.0.0.1:" + port + ": Address already in use\n");
}

}  // namespace
