// Command lines and start-up failures: one line on stderr and the documented exit code
// (0 ok, 1 runtime or network error, 2 usage error).

#include "programs.hpp"

#include <sock/options.hpp>
#include <sock/socket.hpp>
#include <sock/version.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace {

using namespace greet_test;

/// One line on stderr, naming the program, containing `cause`; nothing on stdout.
void expect_one_error_line(const run_result& r, const std::string& program,
                           const std::string& cause) {
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
    EXPECT_EQ(r.err.rfind(program + ": ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(cause), std::string::npos) << r.err;
}

/// A TCP socket on a free loopback port, listening or not.
sock::socket held_port(bool listening) {
    sock::socket s(sock::family::inet, sock::kind::stream);
    s.bind({"127.0.0.1", 0});
    if (listening) s.listen(1);
    return s;
}

TEST(GreetUsage, ServerPortInUse) {
    auto holder = held_port(true);
    const auto port = std::to_string(holder.getsockname().port());
    const auto r = run({bin("greet-server"), "--port", port});
    EXPECT_EQ(r.exit_code, 1);
    expect_one_error_line(r, "greet-server", "Address already in use");
    EXPECT_NE(r.err.find(":" + port + ": "), std::string::npos) << r.err;  // names the address
}

TEST(GreetUsage, ServerUdpPortInUse) {
    sock::socket holder(sock::family::inet, sock::kind::dgram);
    holder.bind({"127.0.0.1", 0});
    const auto port = std::to_string(holder.getsockname().port());
    const auto r = run({bin("greet-server"), "--udp", "--port", port});
    EXPECT_EQ(r.exit_code, 1);
    expect_one_error_line(r, "greet-server", "Address already in use");
}

TEST(GreetUsage, ServerUnknownHost) {
    const auto r = run({bin("greet-server"), "--host", "no-such-host.invalid", "--port", "0"});
    EXPECT_EQ(r.exit_code, 1);
    expect_one_error_line(r, "greet-server", "no-such-host.invalid");
}

TEST(GreetUsage, ServerPortOutOfRange) {
    const auto r = run({bin("greet-server"), "--port", "70000"});
    EXPECT_EQ(r.exit_code, 2);
    expect_one_error_line(r, "greet-server", "70000");
}

TEST(GreetUsage, ServerPortNotANumber) {
    const auto r = run({bin("greet-server"), "--port", "abc"});
    EXPECT_EQ(r.exit_code, 2);
    expect_one_error_line(r, "greet-server", "abc");
}

TEST(GreetUsage, ServerNegativeTimeout) {
    const auto r = run({bin("greet-server"), "--timeout", "-1"});
    EXPECT_EQ(r.exit_code, 2);
    expect_one_error_line(r, "greet-server", "--timeout");
}

TEST(GreetUsage, ServerUnknownOption) {
    const auto r = run({bin("greet-server"), "--no-such-option"});
    EXPECT_EQ(r.exit_code, 2);
    expect_one_error_line(r, "greet-server", "--no-such-option");
}

TEST(GreetUsage, ServerUnixExcludesPort) {
    const auto r = run({bin("greet-server"), "--unix", "/tmp/x.sock", "--port", "0"});
    EXPECT_EQ(r.exit_code, 2);
    expect_one_error_line(r, "greet-server", "--port");
}

TEST(GreetUsage, ClientConnectionRefused) {
    auto holder = held_port(false);  // bound, not listening: connecting is refused
    const auto port = std::to_string(holder.getsockname().port());
    const auto r = run({bin("greet-client"), "--port", port});
    EXPECT_EQ(r.exit_code, 1);
    expect_one_error_line(r, "greet-client", "Connection refused");
    EXPECT_NE(r.err.find("connect"), std::string::npos) << r.err;
}

TEST(GreetUsage, ClientUnixNoSuchFile) {
    temp_dir dir;
    const auto r = run({bin("greet-client"), "--unix", dir.path() + "/none.sock"});
    EXPECT_EQ(r.exit_code, 1);
    expect_one_error_line(r, "greet-client", "No such file or directory");
}

TEST(GreetUsage, ClientTimesOutWaitingForTheReply) {
    auto silent = held_port(true);
    silent.settimeout(10.0);
    child_process client({bin("greet-client"), "--port",
                          std::to_string(silent.getsockname().port()), "--timeout", "0.3"});
    auto [conn, peer] = silent.accept();  // accepted, read, never answered
    conn.settimeout(10.0);
    EXPECT_EQ(conn.recv(1024), "1");
    const run_result r{client.wait(std::chrono::seconds(20)), client.out(), client.err()};
    EXPECT_EQ(r.exit_code, 1);
    expect_one_error_line(r, "greet-client", "timed out");
}

TEST(GreetUsage, ClientUdpTimesOutWaitingForTheReply) {
    sock::socket silent(sock::family::inet, sock::kind::dgram);
    silent.bind({"127.0.0.1", 0});
    const auto port = std::to_string(silent.getsockname().port());
    const auto r = run({bin("greet-client"), "--udp", "--port", port, "--timeout", "0.3"});
    EXPECT_EQ(r.exit_code, 1);
    expect_one_error_line(r, "greet-client", "timed out");
}

TEST(GreetUsage, ClientServerClosedWithoutReply) {
    // A server that reads the message and closes without a word; nothing is left unread, so
    // the client sees a clean end of stream, not a reset.
    auto listener = held_port(true);
    listener.settimeout(10.0);
    child_process client({bin("greet-client"), "--port",
                          std::to_string(listener.getsockname().port())});
    auto [conn, peer] = listener.accept();
    conn.settimeout(10.0);
    EXPECT_EQ(conn.recv(1024), "1");
    conn.close();
    const run_result r{client.wait(std::chrono::seconds(20)), client.out(), client.err()};
    EXPECT_EQ(r.exit_code, 1);
    // Names the server, not the client's own end.
    EXPECT_EQ(r.err, "greet-client: recv " + listener.getsockname().to_string() +
                         ": closed without a reply\n");
}

TEST(GreetUsage, ClientResetNamesTheServer) {
    // A reset leaves the socket without a peer to name; the client still names the server.
    auto listener = held_port(true);
    listener.settimeout(10.0);
    child_process client({bin("greet-client"), "--port",
                          std::to_string(listener.getsockname().port())});
    auto [conn, peer] = listener.accept();
    conn.settimeout(10.0);
    EXPECT_EQ(conn.recv(1024), "1");
    conn.setsockopt(sock::opt::linger, sock::opt::linger_t(std::chrono::seconds(0)));
    conn.close();  // RST
    const run_result r{client.wait(std::chrono::seconds(20)), client.out(), client.err()};
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "greet-client: recv " + listener.getsockname().to_string() +
                         ": Connection reset by peer\n");
}

TEST(GreetUsage, ClientPortOutOfRange) {
    const auto r = run({bin("greet-client"), "--port", "70000"});
    EXPECT_EQ(r.exit_code, 2);
    expect_one_error_line(r, "greet-client", "70000");
}

class GreetPrograms : public ::testing::TestWithParam<std::string> {};

TEST_P(GreetPrograms, HelpExitsZero) {
    const auto r = run({bin(GetParam()), "--help"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.err, "");
    EXPECT_NE(r.out.find("--port"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("--version"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Exit codes: 0 ok"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("2 usage error"), std::string::npos) << r.out;
}

TEST_P(GreetPrograms, VersionExitsZero) {
    const auto r = run({bin(GetParam()), "--version"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out, GetParam() + " " + sock::version + "\n");
    EXPECT_EQ(r.err, "");
}

INSTANTIATE_TEST_SUITE_P(Programs, GreetPrograms,
                         ::testing::Values("greet-server", "greet-client"),
                         [](const auto& param_info) {
                             return param_info.param == "greet-server" ? std::string("Server")
                                                                 : std::string("Client");
                         });

}  // namespace
