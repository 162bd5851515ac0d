// echo-server: sends back whatever each client sends (RFC 862 over TCP), on event loops.

#include "echo/server.hpp"
#include "greet/cli.hpp"

#include <exception>
#include <string>

int main(int argc, char** argv) {
    const std::string name = "echo-server";
    greet::cli::ignore_sigpipe();  // a closed stdout (echo-server | head -1) must not kill it
    CLI::App app{"Sends back everything each client sends, serving many clients at once on event "
                 "loops. The default port is 8007, not echo's 7, so that it runs without root.",
                 name};
    greet::cli::add_conventions(
        app, name,
        "Signals: SIGINT or SIGTERM stop it: clients in flight finish within 5 s (a second "
        "signal cancels them), then it exits 0. SIGHUP is logged and ignored: there is nothing to "
"reload.\n"
        "systemd: given sockets by socket activation (LISTEN_FDS) it serves those, and --host, --port, --unix and --reuse-port are "
        "usage errors (the socket unit says where to listen); with NOTIFY_SOCKET set it tells "
        "the service manager READY=1, STATUS=, STOPPING=1 and WATCHDOG=1, as greet-server does.");

    echo::server_config config;
    int port = config.port;
    double timeout = 0;
    auto* host = greet::cli::add_host_option(app, config.host, "Address or name to listen on");
    auto* port_opt = app.add_option("--port", port, "TCP port; 0 picks a free one")
                         ->capture_default_str()
                         ->check(greet::cli::port_number());
    auto* unix_opt = app.add_option("--unix", config.unix_path,
                                    "Listen on this Unix stream socket instead of TCP")
                         ->excludes(host)
                         ->excludes(port_opt);
    auto* reuse = greet::cli::add_reuse_port_option(app, config.reuse_port)->excludes(unix_opt);
    greet::cli::add_engine_options(app, config.threads, config.max_connections);
    app.add_option("--timeout", timeout, "Seconds a client may stay idle before it is closed; 0 = never")
        ->capture_default_str()
        ->check(greet::cli::seconds_range(0));

    bool tls = false;
    auto* tls_flag = app.add_flag("--tls", tls, "Serve TLS (1.2 and 1.3); needs --tls-cert and --tls-key");
    auto* tls_cert = app.add_option("--tls-cert", config.tls.cert,
                                    "The certificate chain, PEM, leaf first")
                         ->type_name("FILE")
                         ->needs(tls_flag);
    auto* tls_key = app.add_option("--tls-key", config.tls.key, "The certificate's private key, PEM")
                        ->type_name("FILE")
                        ->needs(tls_flag);
    tls_flag->needs(tls_cert)->needs(tls_key);

    if (auto code = greet::cli::parse(app, argc, argv)) return *code;
    config.port = static_cast<std::uint16_t>(port);
    config.idle_timeout = greet::cli::seconds(timeout);
    std::vector<sock::socket> inherited;
    if (auto code = greet::cli::take_listen_fds(app, {host, port_opt, unix_opt, reuse}, inherited))
        return *code;

    try {
        echo::run_server(config, std::move(inherited));
    } catch (const std::exception& e) {
        greet::cli::report(name, e.what());
        return greet::cli::failure;
    }
    return greet::cli::ok;
}
