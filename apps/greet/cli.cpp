#include "greet/cli.hpp"

#include <sock/version.hpp>

#include <iostream>

namespace greet::cli {

void add_conventions(CLI::App& app, const std::string& name) {
    app.set_version_flag("--version", name + " " + sock::version, "Print the version and exit");
    app.footer(
        "Exit codes: 0 ok (servers: stopped by SIGINT or SIGTERM), 1 runtime or network "
        "error, 2 usage error.\n");
}

std::optional<int> parse(CLI::App& app, int argc, char** argv) {
    try {
        app.parse(argc, argv);
        return std::nullopt;
    } catch (const CLI::ParseError& e) {
        // --help and --version arrive here as "errors" with exit code 0; CLI11 prints them.
        if (e.get_exit_code() == 0) return app.exit(e);
        report(app.get_name(), std::string(e.what()) + " (see --help)");
        return usage;
    }
}

void report(std::string_view name, std::string_view what) {
    std::cerr << name << ": " << what << std::endl;
}

std::chrono::nanoseconds seconds(double s) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(s));
}

CLI::Range seconds_range(double min) { return CLI::Range(min, 86400.0); }

void add_engine_options(CLI::App& app, unsigned& threads, std::size_t& max_connections) {
    app.add_option("--threads", threads, "Event loops, one thread each; 0 = one per core")
        ->capture_default_str()
        ->check(CLI::Range(0, 1024));
    app.add_option("--max-connections", max_connections,
                   "Clients served at once; at the limit new ones wait in the listen queue. "
                   "0 = the descriptor limit less a margin")
        ->capture_default_str();
}

}  // namespace greet::cli
