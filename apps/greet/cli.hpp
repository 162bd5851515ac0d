#pragma once

// Conventions shared by every program here (greet-*, echo-server, the seed examples):
// --version, exit codes, error lines, and option values checked so that a mistake gets a
// message that names the option and says what it takes.

#include <sock/socket.hpp>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace greet::cli {

/// Exit codes of every program here; the --help footer lists them.
enum exit_code : int {
    ok = 0,       ///< done (servers: stopped by SIGINT or SIGTERM)
    failure = 1,  ///< a runtime or network error, reported in one line on stderr
    usage = 2,    ///< bad command line
};

/// Adds --version ("<name> <sock::version>") and the exit-code footer to app; `signals` is a
/// footer sentence saying what the program does with SIGINT, SIGTERM and SIGHUP.
void add_conventions(CLI::App& app, const std::string& name, const std::string& signals = "");

/// Adds the engine's options shared by the servers: --threads and --max-connections.
void add_engine_options(CLI::App& app, unsigned& threads, std::size_t& max_connections);

/// Adds --reuse-port, shared by the TCP servers.
CLI::Option* add_reuse_port_option(CLI::App& app, bool& reuse_port);

/// Adds --host: a name, an IPv4 or an IPv6 address, the latter also as "[::1]" (the brackets
/// are dropped).
CLI::Option* add_host_option(CLI::App& app, std::string& host, const std::string& help);

/// Parses the command line. Returns nullopt to go on; otherwise the code to exit with, after
/// --help or --version (0) or a usage error (2, reported in one line on stderr; an unknown
/// option is named with the closest known one, if one is close).
std::optional<int> parse(CLI::App& app, int argc, char** argv);

/// Socket activation: moves the listening sockets a service manager passed (LISTEN_FDS, see
/// sock::listen_fds) into `sockets`; none outside one. Where to listen is then the socket
/// unit's, so each option of `placement` given on the command line is a usage error. Returns
/// nullopt to go on, else the exit code after reporting (2 for such an option, 1 for garbage
/// in the variables or a descriptor that is no socket).
std::optional<int> take_listen_fds(const CLI::App& app, const std::vector<const CLI::Option*>& placement,
                                   std::vector<sock::socket>& sockets);

/// Prints "<name>: <what>" as one line on stderr.
void report(std::string_view name, std::string_view what);

/// Writes all of text to stdout (unbuffered); false with errno set when it cannot (a closed
/// pipe: EPIPE, since SIGPIPE is ignored).
bool write_stdout(std::string_view text) noexcept;

/// Writes line and a newline to fd in one write(2), so that the log lines of several loops
/// never interleave; a failure is ignored (a log has no one to tell).
void write_line(int fd, std::string line);

/// Sets SIGPIPE to be ignored, so that writing to a closed stdout (`prog | head -1`) fails
/// with EPIPE instead of killing the program. Every program calls it first.
void ignore_sigpipe() noexcept;

/// Sets SIGHUP to be ignored (programs that run long but have nothing to reload and do not
/// run on sock::server, which handles it itself).
void ignore_sighup() noexcept;

/// Seconds as given on the command line (0.3) as a duration.
std::chrono::nanoseconds seconds(double s);

/// Accepts seconds in [min, 1 day], fractions allowed; the message of a rejected value names
/// what is accepted ("--timeout: 0 is not a number of seconds from 0.001 to 86400").
CLI::Validator seconds_range(double min);

/// Accepts decimal numbers in [min, max]; "--rate: x is not a number of requests per second
/// from 0.001 to 10000000".
CLI::Validator number(double min, double max, const std::string& unit);

/// Accepts whole numbers in [min, max] (no sign games: "-5" for a size_t is rejected, not
/// wrapped); "--port: abc is not a whole number from 0 to 65535".
CLI::Validator whole_number(std::uint64_t min, std::uint64_t max);

/// The validator of --port values: whole numbers from min (0 or 1) to 65535.
CLI::Validator port_number(std::uint64_t min = 0);

/// Accepts a comma-separated list of networks (sock::parse_networks: "10.0.0.0/8,::1,unix");
/// "--proxy-from: network 10.0.0.1/8: host bits are set (the network is 10.0.0.0/8)".
CLI::Validator networks();

}  // namespace greet::cli
