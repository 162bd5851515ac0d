// What every program shares: --help and --version, and command-line mistakes answered with one
// line that names the option and what it takes (exit 2), never a crash or a wrapped number.

#include "programs.hpp"

#include <sock/socket.hpp>
#include <sock/version.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using namespace greet_test;
using namespace std::chrono_literals;

const std::vector<std::string> programs = {"greet-server", "greet-client", "greet-bench",
                                           "echo-server",  "seed-server",  "seed-client",
                                           "chat-server"};

class EveryProgram : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryProgram, HelpListsVersionAndExitCodes) {
    const auto r = run({bin(GetParam()), "--help"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.err, "");
    EXPECT_NE(r.out.find("--version"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Exit codes: 0 ok, 1 runtime or network error, 2 usage error."),
              std::string::npos)
        << r.out;
}

TEST_P(EveryProgram, Version) {
    const auto r = run({bin(GetParam()), "--version"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out, GetParam() + " " + sock::version + "\n");
    EXPECT_EQ(r.err, "");
}

TEST_P(EveryProgram, UnknownOptionIsAUsageError) {
    const auto r = run({bin(GetParam()), "--no-such-option"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, GetParam() + ": unknown option --no-such-option (see --help)\n");
}

TEST_P(EveryProgram, LongRunningOnesSayWhatSighupDoes) {
    const auto r = run({bin(GetParam()), "--help"});
    const bool long_running = GetParam() != "greet-client" && GetParam() != "seed-client";
    EXPECT_EQ(r.out.find("SIGHUP") != std::string::npos, long_running) << r.out;
}

INSTANTIATE_TEST_SUITE_P(Programs, EveryProgram, ::testing::ValuesIn(programs),
                         [](const auto& param_info) {
                             std::string name;
                             for (char c : param_info.param) name += c == '-' ? '_' : c;
                             return name;
                         });

/// A command line a person got wrong, and a piece of the one line that must answer it.
struct mistake {
    std::vector<std::string> argv;  // program first
    std::string says;
};

class Mistakes : public ::testing::TestWithParam<mistake> {};

TEST_P(Mistakes, OneLineNamingTheOptionAndExitTwo) {
    const auto& m = GetParam();
    std::vector<std::string> argv = m.argv;
    argv[0] = bin(argv[0]);
    const auto r = run(argv, 10s);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
    EXPECT_EQ(r.err.rfind(m.argv[0] + ": ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(m.says), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(
    Programs, Mistakes,
    ::testing::Values(
        mistake{{"greet-server", "--port", "abc"}, "--port: abc is not a whole number from 0 to 65535"},
        mistake{{"greet-server", "--port", "-1"}, "--port: -1 is not a whole number"},
        mistake{{"greet-server", "--max-connections", "-5"},
                "--max-connections: -5 is not a whole number"},
        mistake{{"greet-server", "--threads", "x"}, "--threads: x is not a whole number"},
        mistake{{"greet-server", "--timeout", "0"},
                "--timeout: 0 is not a number of seconds from 0.001 to 86400"},
        mistake{{"greet-server", "--prot", "8001"}, "unknown option --prot; did you mean --port?"},
        mistake{{"greet-server", "--reuse-port", "--unix", "/tmp/x.sock"}, "--unix"},
        mistake{{"greet-client", "--port", "abc"}, "--port: abc is not a whole number"},
        mistake{{"greet-client", "--timeout", "0"}, "--timeout: 0 is not a number of seconds"},
        mistake{{"greet-client", "--delay", "-1"}, "--delay: -1 is not a number of seconds"},
        mistake{{"greet-client", "--mesage", "1"}, "did you mean --message?"},
        mistake{{"greet-bench", "--count", "-1"}, "--count: -1 is not a whole number of at least 1"},
        mistake{{"greet-bench", "--count", "many"}, "--count: many is not a whole number"},
        mistake{{"greet-bench", "--connections", "-5"}, "--connections: -5 is not a whole number"},
        mistake{{"greet-bench", "--duration", "0"}, "--duration: 0 is not a number of seconds"},
        mistake{{"greet-bench", "--rate", "fast"}, "--rate: fast is not a number of requests per second"},
        mistake{{"greet-bench", "--conections", "8"}, "did you mean --connections?"},
        mistake{{"echo-server", "--port", "abc"}, "--port: abc is not a whole number"},
        mistake{{"echo-server", "--max-connections", "-5"}, "--max-connections: -5 is not a whole number"},
        mistake{{"echo-server", "--timeout", "-1"}, "--timeout: -1 is not a number of seconds"},
        mistake{{"chat-server", "--port", "abc"}, "--port: abc is not a whole number"},
        mistake{{"chat-server", "--threads", "-1"}, "--threads: -1 is not a whole number"},
        mistake{{"chat-server", "--max-backlog", "1000"},
                "--max-backlog: 1000 is not a whole number from 65536"},
        mistake{{"seed-server", "abc"}, "port: abc is not a whole number from 0 to 65535"},
        mistake{{"seed-server", "8001", "8002"}, "unexpected argument '8002'"},
        mistake{{"seed-client", "70000"}, "port: 70000 is not a whole number from 1 to 65535"}));

// --host takes an IPv6 address with brackets, as people copy it from "[::1]:8001".

bool have_ipv6_loopback() {
    try {
        sock::socket s(sock::family::inet6, sock::kind::stream);
        s.bind({"::1", 0});
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

TEST(HostInBrackets, GreetServerAndClient) {
    if (!have_ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback here";
    auto s = start_greet_server({"--host", "[::1]", "--port", "0"});
    EXPECT_EQ(s.process->out(), "listening on [::1]:" + std::to_string(s.port) + "\n");
    for (const std::string host : {"[::1]", "::1"}) {
        const auto r = run({bin("greet-client"), "--host", host, "--port", std::to_string(s.port)});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_EQ(r.out, "welcome to server!\n");
    }
}

TEST(HostInBrackets, EchoServerAndGreetBench) {
    if (!have_ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback here";
    auto s = start_server("echo-server", {"--host", "[::1]", "--port", "0", "--threads", "1"});
    const auto r = run({bin("greet-bench"), "--mode", "echo", "--host", "[::1]", "--port",
                        std::to_string(s.port), "--count", "20", "--connections", "2", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("\"completed\": 20,"), std::string::npos) << r.out;
}

TEST(EchoServerDefaults, DefaultPortNeedsNoRoot) {
    // Below 1024 binding needs root; the help shows the default the server would take.
    const auto r = run({bin("echo-server"), "--help"});
    const auto at = r.out.find("--port INT");
    ASSERT_NE(at, std::string::npos) << r.out;
    const auto eq = r.out.find('=', at);
    ASSERT_NE(eq, std::string::npos) << r.out;
    EXPECT_GE(std::stoi(r.out.substr(eq + 1)), 1024) << r.out;
}

}  // namespace
