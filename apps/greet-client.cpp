// greet-client: the seed's client.py as a command-line program.

#include "greet/cli.hpp"
#include "greet/client.hpp"
#include "greet/greeting.hpp"

#include <sock/error.hpp>

#include <cerrno>
#include <exception>
#include <string>
#include <system_error>

int main(int argc, char** argv) {
    const std::string name = "greet-client";
    greet::cli::ignore_sigpipe();  // a closed stdout is reported as an error, not a crash
    CLI::App app{"Connects to a greet server, sends a message and prints the reply.", name};
    greet::cli::add_conventions(app, name);

    greet::client_config config;
    int port = greet::default_port;
    double delay = 0;
    double timeout = greet::default_timeout_seconds;
    auto* host = greet::cli::add_host_option(app, config.host, "Server address or name");
    auto* port_opt = app.add_option("--port", port, "Server port")
                         ->capture_default_str()
                         ->check(greet::cli::port_number(1));
    auto* unix_opt = app.add_option("--unix", config.unix_path,
                                    "Connect to this Unix stream socket instead of TCP")
                         ->excludes(host)
                         ->excludes(port_opt);
    app.add_flag("--udp", config.udp, "Send a UDP datagram instead of using a connection")
        ->excludes(unix_opt);
    app.add_option("--delay", delay, "Seconds to wait between connecting and sending")
        ->capture_default_str()
        ->check(greet::cli::seconds_range(0));
    app.add_option("--timeout", timeout, "Seconds to wait for the connection, and for the reply")
        ->capture_default_str()
        ->check(greet::cli::seconds_range(0.001));
    app.add_option("--message", config.message, "What to send")->capture_default_str();
    auto* tls = app.add_flag("--tls", config.tls,
                             "Speak TLS; the server's certificate must verify (its CA, dates and name)")
                    ->excludes("--udp");
    app.add_option("--cafile", config.cafile,
                   "Trust the CAs of this PEM file instead of the system's store")
        ->type_name("FILE")
        ->needs(tls);
    app.add_option("--server-name", config.server_name,
                   "The name sent to the server (SNI) and checked against its certificate "
                   "[default: the --host value]")
        ->type_name("NAME")
        ->needs(tls);

    if (auto code = greet::cli::parse(app, argc, argv)) return *code;
    config.port = static_cast<std::uint16_t>(port);
    config.delay = greet::cli::seconds(delay);
    config.timeout = greet::cli::seconds(timeout);

    try {
        const std::string reply = greet::ask(config) + "\n";
        if (!greet::cli::write_stdout(reply)) {
            greet::cli::report(name, "write stdout: " + sock::error_reason({errno, std::generic_category()}));
            return greet::cli::failure;
        }
    } catch (const std::exception& e) {
        greet::cli::report(name, e.what());
        return greet::cli::failure;
    }
    return greet::cli::ok;
}
