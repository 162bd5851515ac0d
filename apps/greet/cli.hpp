#pragma once

// Conventions shared by greet-server and greet-client: --version, exit codes, error lines.

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace greet::cli {

/// Exit codes of every program here; the --help footer lists them.
enum exit_code : int {
    ok = 0,       ///< done (servers: stopped by SIGINT or SIGTERM)
    failure = 1,  ///< a runtime or network error, reported in one line on stderr
    usage = 2,    ///< bad command line
};

/// Adds --version ("<name> <sock::version>") and the exit-code footer to app.
void add_conventions(CLI::App& app, const std::string& name);

/// Adds the engine's options shared by the servers: --threads and --max-connections.
void add_engine_options(CLI::App& app, unsigned& threads, std::size_t& max_connections);

/// Parses the command line. Returns nullopt to go on; otherwise the code to exit with, after
/// --help or --version (0) or a usage error (2, reported in one line on stderr).
std::optional<int> parse(CLI::App& app, int argc, char** argv);

/// Prints "<name>: <what>" as one line on stderr.
void report(std::string_view name, std::string_view what);

/// Seconds as given on the command line (0.3) as a duration.
std::chrono::nanoseconds seconds(double s);

/// Accepts seconds in [min, 1 day]; fractions allowed.
CLI::Range seconds_range(double min);

}  // namespace greet::cli
