#pragma once

// Where the programs under test are, and how to start the servers among them.

#include "child_process.hpp"

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace greet_test {

/// A program built into build/bin: "greet-server", "seed-client"...
std::string bin(const std::string& name);
/// A script of tests/python, to run with python3().
std::string python_script(const std::string& name);
/// The Python 3 interpreter CMake found.
std::string python3();

/// A server process and where it listens, learned from its first line of output.
struct server {
    std::unique_ptr<child_process> process;
    std::uint16_t port = 0;
};

/// Starts greet-server with args (add "--port", "0" for TCP or UDP) and waits for its
/// "listening on ADDRESS" line; throws std::runtime_error, with its stderr, if none comes.
/// With options.fds it is socket-activated: LISTEN_FDS counts them, LISTEN_PID is its own.
server start_greet_server(std::vector<std::string> args, const spawn_options& options = {});

/// argv run through a shell that sets LISTEN_PID to the process id argv then has (exec keeps
/// it), as a service manager does between fork and exec.
std::vector<std::string> with_listen_pid(std::vector<std::string> argv);

/// Starts a seed server (argv ends with port 0) that prints its port on its first line.
server start_seed_server(const std::vector<std::string>& argv);

/// Starts any server whose first line on stdout ends in ":PORT" (echo-server, greet-server
/// with TCP) and waits for that line.
server start_server(const std::string& program, std::vector<std::string> args);

/// Waits at most `limit` until process `pid` ignores or catches signal `sig` (SigIgn or
/// SigCgt in /proc/PID/status), so that a test sends it only once the program is ready for it.
bool wait_until_handled(pid_t pid, int sig, std::chrono::milliseconds limit);

/// A fresh private directory under /tmp, removed with its contents on destruction.
class temp_dir {
public:
    temp_dir();
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    const std::string& path() const noexcept { return path_; }

private:
    std::string path_;
};

/// Connects to 127.0.0.1:port, sends message, returns everything read to end of stream.
std::string greet_once(std::uint16_t port, const std::string& message = "1");

/// Text with its lines counted, for "exactly one line" checks.
std::size_t count_lines(const std::string& text);

}  // namespace greet_test
