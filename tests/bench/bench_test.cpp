// greet-bench against real servers on loopback: greet-server, echo-server, nobody.

#include "private_system.hpp"
#include "programs.hpp"

#include <sock/socket.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

namespace {

using namespace greet_test;
using namespace std::chrono_literals;

/// The number after "key": in greet-bench's --json object; fails the test if missing.
double number(const std::string& json, const std::string& key) {
    const auto at = json.find("\"" + key + "\": ");
    if (at == std::string::npos) {
        ADD_FAILURE() << "no " << key << " in " << json;
        return -1;
    }
    return std::strtod(json.c_str() + at + key.size() + 4, nullptr);
}

/// Runs greet-bench --json with args; expects one JSON line, and either exit 0 with nothing
/// on stderr or, when `failure` is given, exit 1 with one line on stderr containing it.
std::string bench_json(std::vector<std::string> args, const std::string& failure = "") {
    args.insert(args.begin(), bin("greet-bench"));
    args.push_back("--json");
    const auto r = run(args, 60s);
    if (failure.empty()) {
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_EQ(r.err, "");
    } else {
        EXPECT_EQ(r.exit_code, 1) << r.err;
        EXPECT_EQ(count_lines(r.err), 1u) << r.err;
        EXPECT_EQ(r.err.rfind("greet-bench: ", 0), 0u) << r.err;
        EXPECT_NE(r.err.find(failure), std::string::npos) << r.err;
    }
    EXPECT_EQ(count_lines(r.out), 1u) << r.out;
    EXPECT_EQ(r.out.rfind('{', 0), 0u) << r.out;
    EXPECT_EQ(r.out.substr(r.out.size() >= 3 ? r.out.size() - 3 : 0), "}}\n") << r.out;
    return r.out;
}

run_result bench(std::vector<std::string> args) {
    args.insert(args.begin(), bin("greet-bench"));
    return run(args, 60s);
}

server start_echo_server(std::vector<std::string> args) {
    args.insert(args.begin(), bin("echo-server"));
    return start_seed_server(args);  // any server whose first line ends in ":PORT"
}

TEST(GreetBench, CountsEveryGreeting) {
    auto s = start_greet_server({"--port", "0", "--quiet"});
    const auto json = bench_json(
        {"--port", std::to_string(s.port), "--count", "200", "--connections", "8"});
    EXPECT_EQ(number(json, "completed"), 200);
    EXPECT_EQ(number(json, "errors"), 0);
    EXPECT_GT(number(json, "rate"), 0);
    EXPECT_GT(number(json, "duration_s"), 0);
    EXPECT_GT(number(json, "max"), 0);
    EXPECT_LE(number(json, "p50"), number(json, "max"));
}

// A name for [::1] and 127.0.0.1, with the server on 127.0.0.1 only: one race at the start
// finds where it answers, and no request goes to the refusing [::1].
TEST(GreetBench, ANameIsLoadedAtTheAddressThatAnswers) {
    {
        std::error_code ec;
        sock::socket probe(sock::family::inet6, sock::kind::stream);
        probe.bind(sock::address("::1", 0), ec);
        if (ec) GTEST_SKIP() << "no [::1] here";
    }
    auto s = start_greet_server({"--host", "127.0.0.1", "--port", "0", "--quiet"});
    const std::map<std::string, std::string> hosts{
        {"/etc/hosts", "::1 two.sock-test\n127.0.0.1 two.sock-test\n"}};
    RUN_IN_PRIVATE_SYSTEM(hosts, false, [&] {
        const auto json = bench_json({"--host", "two.sock-test", "--port", std::to_string(s.port),
                                      "--count", "50", "--connections", "4"});
        EXPECT_EQ(number(json, "completed"), 50);
        EXPECT_EQ(number(json, "errors"), 0);
    });
}

TEST(GreetBench, OtherMessageExpectsTheOtherReply) {
    auto s = start_greet_server({"--port", "0", "--quiet"});
    const auto json = bench_json({"--port", std::to_string(s.port), "--count", "20",
                                  "--connections", "4", "--message", "hello"});
    EXPECT_EQ(number(json, "completed"), 20);
    EXPECT_EQ(number(json, "errors"), 0);
}

TEST(GreetBench, UnexpectedReplyIsBadReply) {
    auto s = start_greet_server({"--port", "0", "--quiet"});
    const auto json = bench_json({"--port", std::to_string(s.port), "--count", "20",
                                  "--connections", "4", "--expect", "hello to you"},
                                 "20 of 20 requests failed: bad_reply 20");
    EXPECT_EQ(number(json, "completed"), 0);
    EXPECT_EQ(number(json, "bad_reply"), 20);
    EXPECT_EQ(number(json, "errors"), 20);
}

TEST(GreetBench, SlowClientsAllComplete) {
    auto s = start_greet_server({"--port", "0", "--quiet"});
    const auto json = bench_json({"--port", std::to_string(s.port), "--count", "50",
                                  "--connections", "50", "--delay", "0.2"});
    EXPECT_EQ(number(json, "completed"), 50);
    EXPECT_EQ(number(json, "errors"), 0);
    EXPECT_GE(number(json, "p50"), 150'000);  // each waited its 0.2 s (less the bucket width)
}

TEST(GreetBench, OpenLoopKeepsItsSchedule) {
    auto s = start_greet_server({"--port", "0", "--quiet"});
    const auto json = bench_json({"--port", std::to_string(s.port), "--rate", "200",
                                  "--duration", "1"});
    EXPECT_EQ(number(json, "errors"), 0);
    EXPECT_GT(number(json, "completed"), 50);  // 200 are scheduled; slow machines finish fewer
    EXPECT_LE(number(json, "completed"), 200);
}

TEST(GreetBench, OpenLoopCountsOverload) {
    // One request in flight at most, each held 0.3 s by --delay, 100 a second scheduled.
    auto s = start_greet_server({"--port", "0", "--quiet"});
    const auto json = bench_json({"--port", std::to_string(s.port), "--rate", "100",
                                  "--count", "20", "--connections", "1", "--delay", "0.3"},
                                 "requests failed: overload");
    EXPECT_EQ(number(json, "completed") + number(json, "overload"), 20);
    EXPECT_GE(number(json, "overload"), 10);
    EXPECT_GE(number(json, "completed"), 1);
}

TEST(GreetBench, DurationRunEndsWithClientsMidRequest) {
    auto s = start_greet_server({"--port", "0", "--quiet"});
    const auto json = bench_json({"--port", std::to_string(s.port), "--duration", "0.3",
                                  "--delay", "30", "--connections", "10"},
                                 "no request completed");
    EXPECT_EQ(number(json, "completed"), 0);  // none finished its delay; none is an error
    EXPECT_EQ(number(json, "errors"), 0);
}

TEST(GreetBench, ClosedPortIsRefused) {
    // Bound but not listening: connections to it are refused, and nobody else can take it.
    sock::socket closed;
    closed.bind({"127.0.0.1", 0});
    const auto port = closed.getsockname().port();
    const auto json = bench_json({"--port", std::to_string(port), "--count", "30",
                                  "--connections", "4"},
                                 "127.0.0.1:" + std::to_string(port) +
                                     ": 30 of 30 requests failed: refused 30");
    EXPECT_EQ(number(json, "completed"), 0);
    EXPECT_EQ(number(json, "refused"), 30);
    EXPECT_EQ(number(json, "errors"), 30);
}

TEST(GreetBench, SilentServerTimesOut) {
    // Listening but never accepting: connects succeed (the kernel queues them), replies never come.
    sock::socket mute;
    mute.bind({"127.0.0.1", 0});
    mute.listen(16);
    const auto port = mute.getsockname().port();
    const auto json = bench_json({"--port", std::to_string(port), "--count", "3",
                                  "--connections", "3", "--timeout", "0.3"},
                                 "3 of 3 requests failed: timeout 3");
    EXPECT_EQ(number(json, "completed"), 0);
    EXPECT_EQ(number(json, "timeout"), 3);
}

TEST(GreetBench, UnixSocket) {
    temp_dir dir;
    const auto path = dir.path() + "/greet.sock";
    auto s = start_greet_server({"--unix", path, "--quiet"});
    const auto json = bench_json({"--unix", path, "--count", "100", "--connections", "8"});
    EXPECT_EQ(number(json, "completed"), 100);
    EXPECT_EQ(number(json, "errors"), 0);
}

TEST(GreetBench, UnixSocketWithAFullQueueWaitsThenTimesOut) {
    temp_dir dir;
    const auto path = dir.path() + "/full.sock";
    sock::socket mute(sock::family::local);
    mute.bind(sock::address::unix_path(path));
    mute.listen(1);
    const auto json = bench_json({"--unix", path, "--count", "6", "--connections", "6",
                                  "--timeout", "0.3"},
                                 "6 of 6 requests failed: timeout 6");
    EXPECT_EQ(number(json, "completed"), 0);
    EXPECT_EQ(number(json, "timeout"), 6);
}

TEST(GreetBench, SummaryForPeopleWithoutProgressWhenNotATerminal) {
    auto s = start_greet_server({"--port", "0", "--quiet"});
    const auto r = bench({"--port", std::to_string(s.port), "--count", "10"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(r.out.rfind("completed  10 in ", 0), 0u) << r.out;
    EXPECT_NE(r.out.find("\nerrors     0\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\nlatency    p50 "), std::string::npos) << r.out;
}

TEST(GreetBench, CountAloneHasNoTimeLimit) {
    // 50 clients each waiting 0.2 s, 4 at a time: about 2.5 s, past no default duration.
    auto s = start_greet_server({"--port", "0", "--quiet"});
    const auto json = bench_json({"--port", std::to_string(s.port), "--count", "50",
                                  "--connections", "4", "--delay", "0.2"});
    EXPECT_EQ(number(json, "completed"), 50);
}

TEST(GreetBench, CountAndDurationWhicheverComesFirst) {
    auto s = start_greet_server({"--port", "0", "--quiet"});
    const auto port = std::to_string(s.port);
    // The count first: the run ends long before its hour (run() gives up after 60 s).
    auto json = bench_json({"--port", port, "--count", "30", "--duration", "3600",
                            "--connections", "2"});
    EXPECT_EQ(number(json, "completed"), 30);
    // The duration first: 0.5 s of clients that each wait 0.2 s cannot make a billion.
    json = bench_json({"--port", port, "--count", "1000000000", "--duration", "0.5",
                       "--connections", "2", "--delay", "0.2"});
    EXPECT_GT(number(json, "completed"), 0);
    EXPECT_LT(number(json, "completed"), 100);
    EXPECT_EQ(number(json, "errors"), 0);
}

TEST(GreetBench, HelpSaysWhatCountAndDurationMeanTogether) {
    const auto r = bench({"--help"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find("whichever comes first"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("With --count alone there is no time limit"), std::string::npos) << r.out;
}

TEST(GreetBench, SummaryAndOneLineWhyWhenRequestsFail) {
    sock::socket closed;
    closed.bind({"127.0.0.1", 0});
    const auto port = std::to_string(closed.getsockname().port());
    const auto r = bench({"--port", port, "--count", "5", "--connections", "1"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out.rfind("completed  0 in ", 0), 0u) << r.out;  // the summary still comes
    EXPECT_EQ(r.err, "greet-bench: 127.0.0.1:" + port + ": 5 of 5 requests failed: refused 5\n");
}

TEST(EchoBench, SmallMessages) {
    auto s = start_echo_server({"--port", "0", "--threads", "1"});
    const auto json = bench_json({"--mode", "echo", "--port", std::to_string(s.port), "--size",
                                  "16", "--count", "500", "--connections", "8"});
    EXPECT_EQ(number(json, "completed"), 500);
    EXPECT_EQ(number(json, "errors"), 0);
}

TEST(EchoBench, LargeMessages) {
    auto s = start_echo_server({"--port", "0", "--threads", "1"});
    const auto json = bench_json({"--mode", "echo", "--port", std::to_string(s.port), "--size",
                                  "16384", "--count", "200", "--connections", "8"});
    EXPECT_EQ(number(json, "completed"), 200);
    EXPECT_EQ(number(json, "errors"), 0);
}

TEST(EchoBench, MessageBiggerThanTheSocketBuffers) {
    // Sending all before reading would deadlock: both sides' buffers fill.
    auto s = start_echo_server({"--port", "0", "--threads", "1"});
    const auto json = bench_json({"--mode", "echo", "--port", std::to_string(s.port), "--size",
                                  "8000000", "--count", "2", "--connections", "1"});
    EXPECT_EQ(number(json, "completed"), 2);
    EXPECT_EQ(number(json, "errors"), 0);
}

TEST(EchoBench, DurationRun) {
    auto s = start_echo_server({"--port", "0", "--threads", "1"});
    const auto json = bench_json({"--mode", "echo", "--port", std::to_string(s.port),
                                  "--duration", "0.3", "--connections", "4"});
    EXPECT_GT(number(json, "completed"), 0);
    EXPECT_EQ(number(json, "errors"), 0);
}

TEST(EchoBench, ClosedPortIsRefused) {
    sock::socket closed;
    closed.bind({"127.0.0.1", 0});
    const auto json = bench_json({"--mode", "echo", "--port",
                                  std::to_string(closed.getsockname().port()), "--count", "10"},
                                 "10 of 10 requests failed: refused 10");
    EXPECT_EQ(number(json, "refused"), 10);
}

TEST(GreetBenchUsage, Version) {
    const auto r = bench({"--version"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out.rfind("greet-bench ", 0), 0u) << r.out;
}

TEST(GreetBenchUsage, BadCommandLinesExitTwoWithOneLine) {
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"--mode", "ping"}, {"--mode", "echo", "--rate", "10"},
          {"--mode", "echo", "--delay", "1"}, {"--size", "10"}, {"--connections", "0"},
          {"--unix", "/tmp/x.sock", "--port", "80"}, {"--bogus"}}) {
        const auto r = bench(args);
        EXPECT_EQ(r.exit_code, 2) << args.front() << ": " << r.err;
        EXPECT_EQ(count_lines(r.err), 1u) << r.err;
        EXPECT_EQ(r.out, "");
    }
}

TEST(GreetBenchUsage, UnresolvableHostExitsOne) {
    const auto r = bench({"--host", "no-such-host.invalid", "--count", "1", "--json"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
    EXPECT_EQ(r.out, "");
}

}  // namespace
