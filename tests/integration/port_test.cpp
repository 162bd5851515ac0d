// A port already in use: an error naming the call, the address and the cause (exit 1), as
// for the tutorial's Python server; unless every instance asks to share it (--reuse-port),
// for a restart without downtime.

#include "programs.hpp"

#include <sock/create.hpp>
#include <sock/socket.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <string>
#include <vector>

namespace {

using namespace greet_test;
using namespace std::chrono_literals;

/// A listening socket on a free loopback port (port 0 first, then kept busy).
sock::socket busy_port() {
    sock::socket s(sock::family::inet, sock::kind::stream);
    s.bind({"127.0.0.1", 0});
    s.listen(1);
    return s;
}

std::string in_use(const std::string& program, std::uint16_t port) {
    return program + ": bind 127.0.0.1:" + std::to_string(port) + ": Address already in use\n";
}

void expect_in_use(const run_result& r, const std::string& program, std::uint16_t port) {
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, in_use(program, port));
}

TEST(BusyPort, GreetServerSaysAddressAlreadyInUse) {
    auto holder = busy_port();
    const auto port = holder.getsockname().port();
    expect_in_use(run({bin("greet-server"), "--port", std::to_string(port)}), "greet-server", port);
}

TEST(BusyPort, EchoServerSaysAddressAlreadyInUse) {
    auto holder = busy_port();
    const auto port = holder.getsockname().port();
    expect_in_use(run({bin("echo-server"), "--port", std::to_string(port)}), "echo-server", port);
}

TEST(BusyPort, SeedServerSaysAddressAlreadyInUse) {
    // The tutorial's server binds "localhost", which is 127.0.0.1 for its AF_INET socket.
    auto holder = busy_port();
    const auto port = holder.getsockname().port();
    expect_in_use(run({bin("seed-server"), std::to_string(port)}), "seed-server", port);
}

TEST(BusyPort, SecondGreetServerOnTheSamePortExitsOne) {
    auto first = start_greet_server({"--host", "127.0.0.1", "--port", "0"});
    expect_in_use(run({bin("greet-server"), "--host", "127.0.0.1", "--port",
                       std::to_string(first.port)}),
                  "greet-server", first.port);
}

TEST(BusyPort, SecondEchoServerOnTheSamePortExitsOne) {
    auto first = start_server("echo-server", {"--port", "0"});
    expect_in_use(run({bin("echo-server"), "--port", std::to_string(first.port)}), "echo-server",
                  first.port);
}

TEST(BusyPort, ReusePortOnOneSideOnlyIsStillAnError) {
    // Sharing needs both to ask: a plain server must not slip into another's group.
    auto first = start_greet_server({"--host", "127.0.0.1", "--port", "0", "--reuse-port"});
    expect_in_use(run({bin("greet-server"), "--host", "127.0.0.1", "--port",
                       std::to_string(first.port)}),
                  "greet-server", first.port);
}

/// Greets `n` times on port; returns how many replies were right.
int greet_many(std::uint16_t port, int n) {
    int right = 0;
    for (int i = 0; i < n; ++i) {
        auto c = sock::create_connection({"127.0.0.1", port}, 10s);
        c.settimeout(10.0);
        c.sendall("1");
        std::string reply;
        for (std::string part; !(part = c.recv(1024)).empty();) reply += part;
        right += reply == "welcome to server!";
    }
    return right;
}

TEST(ReusePort, TwoGreetServersShareThePortAndBothServe) {
    auto first = start_greet_server(
        {"--host", "127.0.0.1", "--port", "0", "--reuse-port", "--threads", "1"});
    auto second = start_greet_server({"--host", "127.0.0.1", "--port", std::to_string(first.port),
                                      "--reuse-port", "--threads", "1"});
    EXPECT_EQ(second.port, first.port);
    // The kernel spreads connections over both by a hash of their addresses: with 64 clients,
    // one server getting none is a chance of 2^-63.
    EXPECT_EQ(greet_many(first.port, 64), 64);
    const std::string served = "\"1\" -> welcome to server!";
    EXPECT_TRUE(first.process->read_line(stream::out, 10s).value_or("").ends_with(served));
    EXPECT_TRUE(second.process->read_line(stream::out, 10s).value_or("").ends_with(served));

    // A restart without downtime: the old one stops, the new one goes on alone.
    first.process->send_signal(SIGTERM);
    EXPECT_EQ(first.process->wait(20s), 0);
    EXPECT_EQ(greet_many(second.port, 8), 8);
}

TEST(ReusePort, TwoEchoServersShareThePort) {
    auto first = start_server("echo-server", {"--port", "0", "--reuse-port", "--threads", "1"});
    auto second = start_server("echo-server", {"--port", std::to_string(first.port),
                                               "--reuse-port", "--threads", "1"});
    EXPECT_EQ(second.port, first.port);
    auto echo_once = [&] {
        auto c = sock::create_connection({"127.0.0.1", first.port}, 10s);
        c.settimeout(10.0);
        c.sendall("ping");
        return c.recv(1024);
    };
    for (int i = 0; i < 16; ++i) EXPECT_EQ(echo_once(), "ping");
    first.process->send_signal(SIGTERM);
    EXPECT_EQ(first.process->wait(20s), 0);
    for (int i = 0; i < 16; ++i) EXPECT_EQ(echo_once(), "ping");  // the second serves alone
}

}  // namespace
