// greet-client against greet-server over TCP, a Unix socket and UDP; stopping the server.

#include "programs.hpp"

#include <sock/socket.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

using namespace greet_test;
using namespace std::chrono_literals;

run_result ask(std::vector<std::string> args) {
    args.insert(args.begin(), bin("greet-client"));
    return run(args);
}

void expect_reply(const run_result& r, const std::string& reply) {
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, reply + "\n");
    EXPECT_EQ(r.err, "");
}

TEST(GreetTcp, WelcomesOne) {
    auto s = start_greet_server({"--port", "0"});
    expect_reply(ask({"--port", std::to_string(s.port)}), "welcome to server!");
}

TEST(GreetTcp, TurnsAwayHello) {
    auto s = start_greet_server({"--port", "0"});
    expect_reply(ask({"--port", std::to_string(s.port), "--message", "hello"}),
                 "please go out!");
}

TEST(GreetTcp, ListensOnTheRealAddressOfLocalhost) {
    auto s = start_greet_server({"--port", "0"});
    EXPECT_NE(s.port, 0);
    EXPECT_EQ(s.process->out(), "listening on 127.0.0.1:" + std::to_string(s.port) + "\n");
}

TEST(GreetTcp, ServesClientsOneAfterAnother) {
    auto s = start_greet_server({"--port", "0", "--host", "127.0.0.1"});
    const auto port = std::to_string(s.port);
    for (int i = 0; i < 3; ++i) {
        expect_reply(ask({"--host", "127.0.0.1", "--port", port}), "welcome to server!");
        expect_reply(ask({"--host", "127.0.0.1", "--port", port, "--message", "11"}),
                     "please go out!");
    }
}

TEST(GreetTcp, ClientWaitsItsDelay) {
    auto s = start_greet_server({"--port", "0"});
    expect_reply(ask({"--port", std::to_string(s.port), "--delay", "0.2"}),
                 "welcome to server!");
}

TEST(GreetUnix, WelcomesOne) {
    temp_dir dir;
    const std::string path = dir.path() + "/greet.sock";
    auto s = start_greet_server({"--unix", path});
    EXPECT_EQ(s.process->out(), "listening on " + path + "\n");
    expect_reply(ask({"--unix", path}), "welcome to server!");
}

TEST(GreetUnix, TurnsAwayHello) {
    temp_dir dir;
    const std::string path = dir.path() + "/greet.sock";
    auto s = start_greet_server({"--unix", path});
    expect_reply(ask({"--unix", path, "--message", "hello"}), "please go out!");
}

TEST(GreetUnix, RemovesItsSocketFileOnExit) {
    temp_dir dir;
    const std::string path = dir.path() + "/greet.sock";
    auto s = start_greet_server({"--unix", path});
    EXPECT_TRUE(std::filesystem::is_socket(path));
    s.process->send_signal(SIGTERM);
    EXPECT_EQ(s.process->wait(10s), 0) << s.process->err();
    EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(GreetUnix, ReplacesAStaleSocketFile) {
    temp_dir dir;
    const std::string path = dir.path() + "/greet.sock";
    {
        sock::socket dead(sock::family::local, sock::kind::stream);
        dead.bind(sock::address::unix_path(path));
    }  // closed: the file stays, nobody answers on it
    ASSERT_TRUE(std::filesystem::is_socket(path));
    auto s = start_greet_server({"--unix", path});
    expect_reply(ask({"--unix", path}), "welcome to server!");
}

TEST(GreetUnix, LeavesARegularFileAlone) {
    temp_dir dir;
    const std::string path = dir.path() + "/greet.sock";
    std::ofstream(path) << "not a socket";
    const auto r = run({bin("greet-server"), "--unix", path});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
    EXPECT_EQ(r.err.rfind("greet-server: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find("Address already in use"), std::string::npos) << r.err;
    EXPECT_TRUE(std::filesystem::is_regular_file(path));
}

TEST(GreetUnix, RefusesWhileAnotherServerAnswers) {
    temp_dir dir;
    const std::string path = dir.path() + "/greet.sock";
    auto first = start_greet_server({"--unix", path});
    const auto r = run({bin("greet-server"), "--unix", path});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
    EXPECT_NE(r.err.find("Address already in use"), std::string::npos) << r.err;
    // The first server still owns its file and still answers.
    expect_reply(ask({"--unix", path}), "welcome to server!");
}

TEST(GreetUdp, WelcomesOne) {
    auto s = start_greet_server({"--udp", "--port", "0"});
    EXPECT_EQ(s.process->out(), "listening on 127.0.0.1:" + std::to_string(s.port) + "\n");
    expect_reply(ask({"--udp", "--port", std::to_string(s.port)}), "welcome to server!");
}

TEST(GreetUdp, TurnsAwayHello) {
    auto s = start_greet_server({"--udp", "--port", "0"});
    expect_reply(ask({"--udp", "--port", std::to_string(s.port), "--message", "hello"}),
                 "please go out!");
}

TEST(GreetUdp, TruncatesTheMessageAt1024Bytes) {
    auto s = start_greet_server({"--udp", "--port", "0"});
    sock::socket c(sock::family::inet, sock::kind::dgram);
    c.settimeout(10.0);
    c.connect({"127.0.0.1", s.port});
    c.send(std::string(3000, 'x'));
    EXPECT_EQ(c.recv(4096), "please go out!");
    // The server logs how much it read of the datagram.
    EXPECT_NE(s.process->read_line(stream::out, 10s).value_or("").find("1024 bytes"),
              std::string::npos);
    c.send("1");
    EXPECT_EQ(c.recv(4096), "welcome to server!");
}

class GreetServerStops : public ::testing::TestWithParam<int> {};

TEST_P(GreetServerStops, ExitsZeroOnSignal) {
    auto s = start_greet_server({"--port", "0"});
    s.process->send_signal(GetParam());
    EXPECT_EQ(s.process->wait(10s), 0);
    EXPECT_EQ(s.process->err(), std::string("received ") + (GetParam() == SIGTERM ? "SIGTERM" : "SIGINT") +
                                    ": stopping gracefully\n");
}

TEST_P(GreetServerStops, ExitsZeroOnSignalInUdpMode) {
    auto s = start_greet_server({"--udp", "--port", "0"});
    s.process->send_signal(GetParam());
    EXPECT_EQ(s.process->wait(10s), 0);
    EXPECT_EQ(s.process->err(), std::string("received ") + (GetParam() == SIGTERM ? "SIGTERM" : "SIGINT") +
                                    ": stopping gracefully\n");
}

INSTANTIATE_TEST_SUITE_P(Signals, GreetServerStops, ::testing::Values(SIGTERM, SIGINT),
                         [](const auto& param_info) {
                             return std::string(param_info.param == SIGTERM ? "SIGTERM" : "SIGINT");
                         });

}  // namespace
