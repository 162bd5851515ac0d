// echo-server on its own: its address line, echoing, stopping.

#include "programs.hpp"

#include <sock/create.hpp>
#include <sock/socket.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace greet_test;
using namespace std::chrono_literals;

server start_echo_server(std::vector<std::string> args) {
    args.insert(args.begin(), bin("echo-server"));
    return start_seed_server(args);
}

TEST(EchoServer, PrintsTheRealAddress) {
    auto s = start_echo_server({"--port", "0"});
    EXPECT_NE(s.port, 0);
    EXPECT_EQ(s.process->out(), "listening on 127.0.0.1:" + std::to_string(s.port) + "\n");
}

TEST(EchoServer, SendsBackWhatItGets) {
    auto s = start_echo_server({"--port", "0", "--threads", "1"});
    auto c = sock::create_connection({"127.0.0.1", s.port}, 5s);
    for (const std::string& message : {std::string("hello"), std::string("1"), std::string(100'000, 'x')}) {
        c.sendall(message);
        std::string back;
        while (back.size() < message.size()) back += c.recv(65536);
        EXPECT_EQ(back, message);
    }
    c.shutdown(sock::shut::wr);
    EXPECT_EQ(c.recv(16), "");  // our EOF ends the connection
}

// Connections of one loop share a read buffer: a send the kernel cannot take at once must
// not be overwritten by another connection's read. Several clients stream distinct bytes
// faster than they read them back, so every server send fills the socket buffer.
TEST(EchoServer, ConcurrentClientsGetTheirOwnBytesBack) {
    auto s = start_echo_server({"--port", "0", "--threads", "1"});
    constexpr int clients = 4;
    constexpr std::size_t size = 16 * 1024 * 1024;  // more than the kernel buffers hold
    std::vector<std::string> got(clients);
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i) {
        threads.emplace_back([&, i] {
            std::string payload(size, '\0');
            for (std::size_t k = 0; k < size; ++k)
                payload[k] = static_cast<char>('a' + (k * 7 + static_cast<std::size_t>(i) * 13) % 26);
            auto c = sock::create_connection({"127.0.0.1", s.port}, 30s);
            std::thread writer([&c, &payload] { c.sendall(payload); });
            // A client that starts reading late: meanwhile the server's sends fill the buffers
            // and have to wait. (The load's shape, not synchronisation: any delay is correct.)
            std::this_thread::sleep_for(50ms);
            std::string back;
            while (back.size() < size) {
                auto part = c.recv(65536);
                if (part.empty()) break;
                back += part;
            }
            writer.join();
            got[static_cast<std::size_t>(i)] = back == payload ? "same" : "different";
        });
    }
    for (auto& t : threads) t.join();
    for (int i = 0; i < clients; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], "same") << "client " << i;
}

TEST(EchoServer, ClosesIdleClientsAfterTheTimeout) {
    auto s = start_echo_server({"--port", "0", "--timeout", "0.2"});
    auto c = sock::create_connection({"127.0.0.1", s.port}, 5s);
    EXPECT_EQ(c.recv(16), "");
}

TEST(EchoServer, UnixSocket) {
    temp_dir dir;
    const auto path = dir.path() + "/echo.sock";
    child_process server({bin("echo-server"), "--unix", path});
    EXPECT_EQ(server.read_line(stream::out, 10s), "listening on " + path);
    auto c = sock::create_connection(sock::address::unix_path(path), 5s);
    c.sendall("ping");
    EXPECT_EQ(c.recv(16), "ping");
}

TEST(EchoServer, StopsOnSigtermWithExitZero) {
    auto s = start_echo_server({"--port", "0"});
    s.process->send_signal(SIGTERM);
    EXPECT_EQ(s.process->wait(10s), 0) << s.process->err();
}

TEST(EchoServer, AddressItCannotBindExitsOne) {
    // 192.0.2.1 (TEST-NET-1) is on no interface here: bind fails with EADDRNOTAVAIL.
    const auto r = run({bin("echo-server"), "--host", "192.0.2.1", "--port", "0"}, 10s);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
    EXPECT_EQ(r.out, "");
}

}  // namespace
