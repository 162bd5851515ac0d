#include "programs.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <system_error>

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

server start_greet_server(std::vector<std::string> args) {
    args.insert(args.begin(), bin("greet-server"));
    server s;
    s.process = std::make_unique<child_process>(args);
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

std::size_t count_lines(const std::string& text) {
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace greet_test
