// Wire compatibility: the C++ programs, the C++ seed examples and the Python seed programs
// all speak the same protocol, every client against every server.

#include "programs.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using namespace greet_test;

constexpr const char* welcome_line = "welcome to server!\n";

server python_seed_server() {
    return start_seed_server({python3(), python_script("seed_server.py"), "0"});
}
server cpp_seed_server() { return start_seed_server({bin("seed-server"), "0"}); }

void expect_welcome(const run_result& r) {
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, welcome_line);
    EXPECT_EQ(r.err, "");
}

run_result greet_client(std::uint16_t port, const std::string& message = "1") {
    return run({bin("greet-client"), "--port", std::to_string(port), "--message", message});
}
run_result python_seed_client(std::uint16_t port) {
    return run({python3(), python_script("seed_client.py"), std::to_string(port), "0"});
}
run_result cpp_seed_client(std::uint16_t port) {
    return run({bin("seed-client"), std::to_string(port)});  // waits 2 s, as the seed
}

TEST(SeedWire, GreetClientAgainstPythonSeedServer) {
    auto s = python_seed_server();
    expect_welcome(greet_client(s.port));
    const auto r = greet_client(s.port, "hello");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "please go out!\n");
}

TEST(SeedWire, PythonSeedClientAgainstGreetServer) {
    auto s = start_greet_server({"--port", "0"});
    expect_welcome(python_seed_client(s.port));
}

TEST(SeedWire, CppSeedClientAgainstCppSeedServer) {
    auto s = cpp_seed_server();
    expect_welcome(cpp_seed_client(s.port));
}

TEST(SeedWire, CppSeedClientAgainstPythonSeedServer) {
    auto s = python_seed_server();
    expect_welcome(cpp_seed_client(s.port));
}

TEST(SeedWire, PythonSeedClientAgainstCppSeedServer) {
    auto s = cpp_seed_server();
    expect_welcome(python_seed_client(s.port));
}

TEST(SeedWire, PythonSeedClientAgainstPythonSeedServer) {
    auto s = python_seed_server();
    expect_welcome(python_seed_client(s.port));
}

TEST(SeedWire, GreetClientAgainstCppSeedServer) {
    auto s = cpp_seed_server();
    expect_welcome(greet_client(s.port));
    const auto r = greet_client(s.port, "hello");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "please go out!\n");
}

TEST(SeedWire, CppSeedClientAgainstGreetServer) {
    auto s = start_greet_server({"--port", "0"});
    expect_welcome(cpp_seed_client(s.port));
}

}  // namespace
