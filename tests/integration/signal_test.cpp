// SIGHUP (a closed terminal, a reload habit) and SIGPIPE (stdout a closed pipe, as in
// `greet-server | head -1`) never end a program.

#include "programs.hpp"

#include <sock/create.hpp>
#include <sock/socket.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <string>

namespace {

using namespace greet_test;
using namespace std::chrono_literals;

/// Sends SIGHUP once the process handles it, then checks it is still running.
void hang_up(child_process& p) {
    ASSERT_TRUE(wait_until_handled(p.pid(), SIGHUP, 10s));
    p.send_signal(SIGHUP);
    EXPECT_EQ(p.wait(300ms), std::nullopt) << "ended by SIGHUP: " << p.err();
}

TEST(Sighup, GreetServerLogsItAndGoesOn) {
    auto s = start_greet_server({"--host", "127.0.0.1", "--port", "0", "--quiet"});
    hang_up(*s.process);
    EXPECT_EQ(greet_once(s.port), "welcome to server!");
    EXPECT_NE(s.process->err().find("SIGHUP"), std::string::npos) << s.process->err();
    s.process->send_signal(SIGTERM);
    EXPECT_EQ(s.process->wait(20s), 0);
}

TEST(Sighup, EchoServerGoesOn) {
    auto s = start_server("echo-server", {"--port", "0"});
    hang_up(*s.process);
    auto c = sock::create_connection({"127.0.0.1", s.port}, 10s);
    c.settimeout(10.0);
    c.sendall("ping");
    EXPECT_EQ(c.recv(1024), "ping");
    s.process->send_signal(SIGTERM);
    EXPECT_EQ(s.process->wait(20s), 0);
}

TEST(Sighup, SeedServerIgnoresIt) {
    auto s = start_seed_server({bin("seed-server"), "0"});
    hang_up(*s.process);
    EXPECT_EQ(greet_once(s.port), "welcome to server!");
}

TEST(Sighup, GreetBenchIgnoresIt) {
    auto s = start_greet_server({"--host", "127.0.0.1", "--port", "0", "--quiet"});
    child_process bench({bin("greet-bench"), "--port", std::to_string(s.port), "--duration", "2",
                         "--connections", "2", "--json"});
    ASSERT_TRUE(wait_until_handled(bench.pid(), SIGHUP, 10s));
    bench.send_signal(SIGHUP);
    EXPECT_EQ(bench.wait(30s), 0) << bench.err();
    EXPECT_NE(bench.out().find("\"errors\": 0,"), std::string::npos) << bench.out();
}

TEST(Sigpipe, GreetServerWithAClosedStdoutGoesOn) {
    auto s = start_greet_server({"--host", "127.0.0.1", "--port", "0"});
    s.process->close_stdout();  // `greet-server | head -1`: head has its line and is gone
    // Each served client is a line on stdout: the write fails (EPIPE), the server goes on.
    for (int i = 0; i < 3; ++i) EXPECT_EQ(greet_once(s.port), "welcome to server!");
    EXPECT_EQ(s.process->wait(300ms), std::nullopt) << s.process->err();
    s.process->send_signal(SIGTERM);
    EXPECT_EQ(s.process->wait(20s), 0) << s.process->err();
}

TEST(Sigpipe, SeedServerWithAClosedStdoutGoesOn) {
    auto s = start_seed_server({bin("seed-server"), "0"});
    s.process->close_stdout();
    {
        // Silent: after its 5 s the server prints "time out" to the closed pipe.
        auto c = sock::create_connection({"127.0.0.1", s.port}, 10s);
        c.settimeout(20.0);
        EXPECT_EQ(c.recv(1024), "");
    }
    EXPECT_EQ(greet_once(s.port), "welcome to server!");
}

TEST(Sigpipe, GreetClientWithAClosedStdoutSaysSo) {
    sock::socket listener(sock::family::inet, sock::kind::stream);
    listener.bind({"127.0.0.1", 0});
    listener.listen(1);
    listener.settimeout(10.0);
    child_process client({bin("greet-client"), "--port",
                          std::to_string(listener.getsockname().port())});
    auto [conn, peer] = listener.accept();
    conn.settimeout(10.0);
    EXPECT_EQ(conn.recv(1024), "1");
    client.close_stdout();  // before the reply, so the client's one write meets a closed pipe
    conn.sendall("welcome to server!");
    conn.close();
    EXPECT_EQ(client.wait(20s), 1);
    EXPECT_EQ(client.err(), "greet-client: write stdout: Broken pipe\n");
}

// The greeting is answered only once stdout is closed: a bench that finished before the
// close (its report then fits in the pipe) would exit 0.
TEST(Sigpipe, GreetBenchWithAClosedStdoutSaysSo) {
    sock::socket listener(sock::family::inet, sock::kind::stream);
    listener.bind({"127.0.0.1", 0});
    listener.listen(1);
    listener.settimeout(10.0);
    child_process bench({bin("greet-bench"), "--port", std::to_string(listener.getsockname().port()),
                         "--count", "1", "--connections", "1"});
    auto [conn, peer] = listener.accept();
    conn.settimeout(10.0);
    EXPECT_EQ(conn.recv(1024), "1");
    bench.close_stdout();
    conn.sendall("welcome to server!");
    conn.close();
    EXPECT_EQ(bench.wait(30s), 1);
    EXPECT_EQ(bench.err(), "greet-bench: write stdout: Broken pipe\n");
}

}  // namespace
