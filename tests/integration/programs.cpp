#include "programs.hpp"

#include <sock/create.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <cerrno>

namespace greet_test {

namespace {

constexpr std::chrono::seconds start_limit{10};

std::uint16_t port_of(const std::string& text) {
    const auto digits = text.substr(text.rfind(':') + 1);
    const unsigned long port = std::stoul(digits);
    if (port > 65535) throw std::runtime_error("not a port: " + text);
    return static_cast<std::uint16_t>(port);
}

}  // namespace

std::string bin(const std::string& name) { return std::string(GREET_BIN_DIR) + "/" + name; }

std::string python_script(const std::string& name) {
    return std::string(GREET_PYTHON_DIR) + "/" + name;
}

std::string python3() { return GREET_PYTHON3; }

std::vector<std::string> with_listen_pid(std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"/bin/sh", "-c", "export LISTEN_PID=$$; exec \"$0\" \"$@\""});
    return argv;
}

server start_greet_server(std::vector<std::string> args, const spawn_options& options) {
    args.insert(args.begin(), bin("greet-server"));
    server s;
    if (options.fds.empty()) {
        s.process = std::make_unique<child_process>(args, options);
    } else {
        auto activated = options;
        activated.env.push_back("LISTEN_FDS=" + std::to_string(options.fds.size()));
        s.process = std::make_unique<child_process>(with_listen_pid(args), activated);
    }
    const auto line = s.process->read_line(stream::out, start_limit);
    const std::string prefix = "listening on ";
    if (!line || line->rfind(prefix, 0) != 0) {
        s.process->wait(std::chrono::seconds(1));
        throw std::runtime_error("greet-server did not start: " + line.value_or("") + " " +
                                 s.process->err());
    }
    if (line->find('/') == std::string::npos && line->find('@') == std::string::npos)
        s.port = port_of(*line);
    return s;
}

server start_seed_server(const std::vector<std::string>& argv) {
    server s;
    s.process = std::make_unique<child_process>(argv);
    const auto line = s.process->read_line(stream::out, start_limit);
    if (!line || line->empty()) {
        s.process->wait(std::chrono::seconds(1));
        throw std::runtime_error(argv.at(0) + " did not start: " + s.process->err());
    }
    s.port = port_of(*line);
    return s;
}

server start_server(const std::string& program, std::vector<std::string> args) {
    args.insert(args.begin(), bin(program));
    return start_seed_server(args);
}

bool wait_until_handled(pid_t pid, int sig, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    const unsigned long long bit = 1ULL << (sig - 1);
    do {
        std::ifstream status("/proc/" + std::to_string(pid) + "/status");
        for (std::string line; std::getline(status, line);) {
            if ((line.rfind("SigIgn:", 0) == 0 || line.rfind("SigCgt:", 0) == 0) &&
                (std::stoull(line.substr(7), nullptr, 16) & bit) != 0)
                return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
}

temp_dir::temp_dir() {
    std::string pattern = "/tmp/greet-test-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr)
        throw std::system_error(errno, std::generic_category(), "mkdtemp");
    path_ = pattern;
}

temp_dir::~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::string greet_once(std::uint16_t port, const std::string& message) {
    auto c = sock::create_connection({"127.0.0.1", port}, std::chrono::seconds(10));
    c.settimeout(10.0);
    c.sendall(message);
    std::string reply;
    for (std::string part; !(part = c.recv(1024)).empty();) reply += part;
    return reply;
}

std::size_t count_lines(const std::string& text) {
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace greet_test
