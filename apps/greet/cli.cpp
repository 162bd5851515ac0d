#include "greet/cli.hpp"

#include <sock/network.hpp>
#include <sock/systemd.hpp>
#include <sock/version.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <stdexcept>
#include <vector>

namespace greet::cli {

namespace {

/// A number as the messages show it: 0.001, 86400, 65535 (not 0.001000 or 8.64e+04).
std::string show(double x) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.15g", x);
    return buf;
}

/// Edits (insert, delete, replace) turning a into b: how close a mistyped option is.
std::size_t distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
            diagonal = above;
        }
    }
    return row[b.size()];
}

/// The known option closest to `given` ("--prot" -> "--port"), or "" if none is close: at
/// most two edits, and fewer than a third of the name (so "--x" suggests nothing).
std::string closest_option(const CLI::App& app, std::string_view given) {
    std::string best;
    std::size_t best_distance = std::numeric_limits<std::size_t>::max();
    for (const CLI::Option* opt : app.get_options()) {
        for (const auto& long_name : opt->get_lnames()) {
            const std::string candidate = "--" + long_name;
            const std::size_t d = distance(given, candidate);
            if (d < best_distance) {
                best_distance = d;
                best = candidate;
            }
        }
    }
    if (best_distance == 0 || best_distance > 2 || best_distance * 3 > given.size()) return "";
    return best;
}

/// The usage error for arguments no option took: names the first unknown option and the
/// option it probably meant.
std::string unexpected(const CLI::App& app, const std::vector<std::string>& extras,
                       const std::string& fallback) {
    for (const auto& arg : extras) {
        if (arg.size() < 2 || arg[0] != '-') continue;
        const std::string name = arg.substr(0, arg.find('='));
        const std::string close = name.rfind("--", 0) == 0 ? closest_option(app, name) : "";
        return "unknown option " + name + (close.empty() ? "" : "; did you mean " + close + "?");
    }
    if (!extras.empty()) return "unexpected argument '" + extras.front() + "'";
    return fallback;
}

}  // namespace

void add_conventions(CLI::App& app, const std::string& name, const std::string& signals) {
    app.set_version_flag("--version", name + " " + sock::version, "Print the version and exit");
    std::string footer;
    if (!signals.empty()) footer += signals + "\n";
    footer += "Exit codes: 0 ok, 1 runtime or network error, 2 usage error.\n";
    app.footer(footer);
}

std::optional<int> parse(CLI::App& app, int argc, char** argv) {
    try {
        app.parse(argc, argv);
        return std::nullopt;
    } catch (const CLI::ExtrasError& e) {
        report(app.get_name(), unexpected(app, app.remaining(), e.what()) + " (see --help)");
        return usage;
    } catch (const CLI::ParseError& e) {
        // --help and --version arrive here as "errors" with exit code 0; CLI11 prints them.
        if (e.get_exit_code() == 0) return app.exit(e);
        report(app.get_name(), std::string(e.what()) + " (see --help)");
        return usage;
    }
}

std::optional<int> take_listen_fds(const CLI::App& app, const std::vector<const CLI::Option*>& placement,
                                   std::vector<sock::socket>& sockets) {
    try {
        for (auto& inherited : sock::listen_fds()) sockets.push_back(std::move(inherited.sock));
    } catch (const std::exception& e) {
        report(app.get_name(), e.what());
        return failure;
    }
    if (sockets.empty()) return std::nullopt;
    for (const CLI::Option* opt : placement) {
        if (opt->count() == 0) continue;
        report(app.get_name(), opt->get_name() + ": not with socket activation (LISTEN_FDS): the " +
                                   "service manager's socket unit says where to listen");
        return usage;
    }
    return std::nullopt;
}

void report(std::string_view name, std::string_view what) {
    std::cerr << name << ": " << what << std::endl;
}

bool write_stdout(std::string_view text) noexcept {
    while (!text.empty()) {
        const auto n = ::write(1, text.data(), text.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        text.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

void write_line(int fd, std::string line) {
    line += '\n';
    [[maybe_unused]] auto n = ::write(fd, line.data(), line.size());
}

void ignore_sigpipe() noexcept { ::signal(SIGPIPE, SIG_IGN); }

void ignore_sighup() noexcept { ::signal(SIGHUP, SIG_IGN); }

std::chrono::nanoseconds seconds(double s) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(s));
}

CLI::Validator number(double min, double max, const std::string& unit) {
    const std::string range = show(min) + " to " + show(max);
    return CLI::Validator(
        [min, max, range, unit](std::string& text) -> std::string {
            char* end = nullptr;
            errno = 0;
            const double x = std::strtod(text.c_str(), &end);
            if (text.empty() || end != text.c_str() + text.size() || errno != 0 ||
                !std::isfinite(x) || x < min || x > max)
                return text + " is not a number of " + unit + " from " + range;
            return "";
        },
        range);
}

CLI::Validator seconds_range(double min) { return number(min, 86400.0, "seconds"); }

CLI::Validator whole_number(std::uint64_t min, std::uint64_t max) {
    const std::string range = max == std::numeric_limits<std::uint64_t>::max()
                                  ? "of at least " + std::to_string(min)
                                  : "from " + std::to_string(min) + " to " + std::to_string(max);
    return CLI::Validator(
        [min, max, range](std::string& text) -> std::string {
            std::uint64_t n = 0;
            const char* end = text.data() + text.size();
            const auto [p, ec] = std::from_chars(text.data(), end, n);  // no sign, no space
            if (text.empty() || ec != std::errc{} || p != end || n < min || n > max)
                return text + " is not a whole number " + range;
            return "";
        },
        range);
}

CLI::Validator port_number(std::uint64_t min) { return whole_number(min, 65535); }

CLI::Validator networks() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            try {
                sock::parse_networks(text);
            } catch (const std::invalid_argument& e) {
                return e.what();
            }
            return "";
        },
        "CIDR[,CIDR...]");
}

void add_engine_options(CLI::App& app, unsigned& threads, std::size_t& max_connections) {
    app.add_option("--threads", threads, "Event loops, one thread each; 0 = one per core")
        ->capture_default_str()
        ->check(whole_number(0, 1024));
    app.add_option("--max-connections", max_connections,
                   "Clients served at once; at the limit new ones wait in the listen queue. "
                   "0 = the descriptor limit less a margin")
        ->capture_default_str()
        ->check(whole_number(0, std::numeric_limits<std::uint32_t>::max()));
}

CLI::Option* add_reuse_port_option(CLI::App& app, bool& reuse_port) {
    return app.add_flag("--reuse-port", reuse_port,
                 "Share the port with other instances started with --reuse-port (SO_REUSEPORT), "
                 "for a restart without downtime: start the new one, then stop the old one. "
                 "Without it, a port in use is an error");
}

CLI::Option* add_host_option(CLI::App& app, std::string& host, const std::string& help) {
    return app.add_option("--host", host, help + "; an IPv6 address also as [::1]")
        ->capture_default_str()
        ->transform(
            // By reference: a by-value string here trips GCC 12's -Wmaybe-uninitialized at -O2.
            [](const std::string& text) {
                if (text.size() >= 2 && text.front() == '[' && text.back() == ']')
                    return text.substr(1, text.size() - 2);
                return text;
            },
            "", "brackets");
}

}  // namespace greet::cli
