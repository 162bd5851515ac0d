// greet-bench: a load generator for the greeting protocol and for echo, on one event loop.

#include "greet/descriptor_limit.hpp"
#include "bench/load.hpp"
#include "bench/outcome.hpp"
#include "bench/report.hpp"
#include "greet/cli.hpp"
#include "greet/greeting.hpp"

#include <sock/address.hpp>
#include <sock/create.hpp>
#include <sock/error.hpp>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <exception>
#include <string>
#include <system_error>

namespace {

const std::string name = "greet-bench";

/// Descriptors the program needs besides its clients: stdio, epoll, eventfd, timerfd...
constexpr std::size_t spare_descriptors = 32;

/// The address to load: host's only address, or, when a name has several, the one that wins
/// a Happy Eyeballs race (create_connection), so that a name whose first address does not
/// answer is loaded where it does. Requests then connect to it directly: resolving and racing
/// per request would measure the client. If the race fails, the first address is loaded, and
/// the run reports its errors.
sock::address pick_target(const std::string& host, std::uint16_t port, std::chrono::nanoseconds timeout) {
    const auto infos = sock::getaddrinfo(host, port, sock::family::unspec, sock::kind::stream);
    if (infos.size() == 1) return infos.front().addr;
    std::error_code ec;
    auto probe = sock::create_connection({host, port}, timeout, std::nullopt,
                                         sock::default_happy_eyeballs_delay, ec);
    if (ec) return infos.front().addr;
    auto winner = probe.getpeername(ec);
    return ec ? infos.front().addr : winner;
}

}  // namespace

int main(int argc, char** argv) {
    greet::cli::ignore_sigpipe();  // a closed stdout is reported as an error, not a crash
    greet::cli::ignore_sighup();   // a run outlives the terminal it was started from
    CLI::App app{"Loads a greeting server (greet: connect, send the message, read the reply until "
                 "EOF, close) or an echo server (echo: persistent connections, ping-pong) from one "
                 "thread, and reports completed requests, errors by kind, rate and latency. Exits "
                 "1, with one line on stderr saying how many failed and why, when any request "
                 "failed or none completed.",
                 name};
    greet::cli::add_conventions(app, name,
                                "Signals: SIGHUP is ignored; SIGINT and SIGTERM end it at once.");

    bench::load_config config;
    std::string host = "127.0.0.1";
    int port = greet::default_port;
    std::string unix_path;
    std::string mode_name = "greet";
    double duration = 5;
    double delay = 0;
    double timeout = 10;
    bool json = false;

    auto* host_opt = greet::cli::add_host_option(
        app, host,
        "Server address or name; a name is resolved once, and if it has several addresses they "
        "are raced once (Happy Eyeballs) and the load goes to the winner");
    auto* port_opt = app.add_option("--port", port, "Server TCP port")
                         ->capture_default_str()
                         ->check(greet::cli::port_number(1));
    app.add_option("--unix", unix_path, "Connect to this Unix stream socket instead of TCP")
        ->excludes(host_opt)
        ->excludes(port_opt);
    app.add_option("--mode", mode_name, "greet: one request per connection; echo: ping-pong")
        ->capture_default_str()
        ->check(CLI::IsMember({"greet", "echo"}));
    auto* message_opt = app.add_option("--message", config.message, "greet: what each client sends")
                            ->capture_default_str();
    auto* expect_opt = app.add_option("--expect", config.expect,
                                      "greet: the reply that counts as success [default: \"welcome "
                                      "to server!\" for the message \"1\", else \"please go out!\"]");
    auto* size_opt = app.add_option("--size", config.size, "echo: bytes per message")
                         ->capture_default_str()
                         ->check(greet::cli::whole_number(1, std::uint64_t{64} << 20));
    app.add_option("--connections", config.connections,
                   "Concurrent clients (closed loop), or the most requests in flight (--rate)")
        ->capture_default_str()
        ->check(greet::cli::whole_number(1, std::uint64_t{1} << 20));
    auto* duration_opt =
        app.add_option("--duration", duration,
                       "Seconds to run; with --count, whichever comes first. With --count "
                       "alone there is no time limit")
            ->capture_default_str()
            ->check(greet::cli::seconds_range(0.001));
    auto* count_opt =
        app.add_option("--count", config.count,
                       "Requests to make in all (successes and errors), then stop; with "
                       "--duration, whichever comes first")
            ->check(greet::cli::whole_number(1, UINT64_MAX));
    auto* delay_opt = app.add_option("--delay", delay,
                                     "greet: seconds each client waits between connecting and sending")
                          ->capture_default_str()
                          ->check(greet::cli::seconds_range(0));
    auto* rate_opt = app.add_option("--rate", config.rate,
                                    "greet: start this many requests per second on a fixed schedule "
                                    "(open loop; latency counts from the scheduled start)")
                         ->check(greet::cli::number(0.001, 1e7, "requests per second"));
    app.add_option("--timeout", timeout, "Seconds one request may take, connect included")
        ->capture_default_str()
        ->check(greet::cli::seconds_range(0.001));
    app.add_flag("--json", json, "Print only one JSON object on stdout");
    bool tls = false;
    std::string cafile;
    auto* tls_opt = app.add_flag("--tls", tls,
                                 "greet: speak TLS, a full handshake per request; the server's "
                                 "certificate must verify. Failed handshakes count as errors "
                                 "(kind \"handshake\", or timeout, reset)");
    app.add_flag("--resume", config.resume,
                 "greet --tls: each client resumes the session of its previous request (TLS 1.3 "
                 "tickets); the report says how many resumed")
        ->needs(tls_opt);
    app.add_option("--cafile", cafile, "--tls: trust the CAs of this PEM file instead of the system's store")
        ->type_name("FILE")
        ->needs(tls_opt);
    app.add_option("--server-name", config.server_name,
                   "--tls: the name sent (SNI) and checked against the certificate [default: the "
                   "--host value]")
        ->type_name("NAME")
        ->needs(tls_opt);

    if (auto code = greet::cli::parse(app, argc, argv)) return *code;
    const auto mode = mode_name == "echo" ? bench::mode::echo : bench::mode::greet;
    if (mode == bench::mode::echo) {
        for (auto* opt : {message_opt, expect_opt, delay_opt, rate_opt}) {
            if (opt->count() != 0) {
                greet::cli::report(name, opt->get_name() + " applies to --mode greet only (see --help)");
                return greet::cli::usage;
            }
        }
        if (tls) {
            greet::cli::report(name, "--tls applies to --mode greet only (see --help)");
            return greet::cli::usage;
        }
    } else if (size_opt->count() != 0) {
        greet::cli::report(name, "--size applies to --mode echo only (see --help)");
        return greet::cli::usage;
    }

    config.mode = mode;
    if (expect_opt->count() == 0) config.expect = std::string(bench::default_expected_reply(config.message));
    // --count alone runs until the count is reached; --duration (given or by default) bounds
    // every other run.
    config.duration = count_opt->count() != 0 && duration_opt->count() == 0
                          ? std::chrono::nanoseconds::zero()
                          : greet::cli::seconds(duration);
    config.delay = greet::cli::seconds(delay);
    config.timeout = greet::cli::seconds(timeout);
    config.progress = !json && ::isatty(2) == 1;

    try {
        if (tls) {
            config.tls = sock::ssl::create_default_context(sock::ssl::purpose::server_auth, cafile);
            if (config.server_name.empty()) config.server_name = host;
        }
        if (!unix_path.empty()) {
            config.target = sock::address::unix_path(unix_path);
        } else {
            config.target = pick_target(host, static_cast<std::uint16_t>(port), config.timeout);
        }
        const std::size_t fds = greet::raise_descriptor_limit();
        if (config.connections + spare_descriptors > fds)
            greet::cli::report(name, "warning: " + std::to_string(config.connections) +
                                         " connections but only " + std::to_string(fds) +
                                         " descriptors; expect errors of kind \"other\"");
        const auto results = bench::run_load(config);
        if (!greet::cli::write_stdout(json ? bench::format_json(results)
                                           : bench::format_summary(results))) {
            greet::cli::report(name, "write stdout: " + sock::error_reason({errno, std::generic_category()}));
            return greet::cli::failure;
        }
        if (const auto why = bench::failure_line(results); !why.empty()) {
            greet::cli::report(name, config.target.to_string() + ": " + why);
            return greet::cli::failure;
        }
    } catch (const std::exception& e) {
        greet::cli::report(name, e.what());
        return greet::cli::failure;
    }
    return greet::cli::ok;
}
