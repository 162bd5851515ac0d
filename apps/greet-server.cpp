// greet-server: the seed's server.py as a command-line program.

#include "greet/cli.hpp"
#include "greet/greeting.hpp"
#include "greet/host.hpp"
#include "greet/server.hpp"

#include <sock/network.hpp>

#include <exception>
#include <stdexcept>
#include <string>

int main(int argc, char** argv) {
    const std::string name = "greet-server";
    greet::cli::ignore_sigpipe();  // a closed stdout (greet-server | head -1) must not kill it
    CLI::App app{"Replies \"welcome to server!\" to a client that sends \"1\" and \"please go "
                 "out!\" to any other, serving many clients at once on event loops.",
                 name};
    greet::cli::add_conventions(
        app, name,
        "Signals: SIGINT or SIGTERM stop it: after --stop-delay, clients in flight finish within "
        "5 s (a second signal skips the delay and cancels them), then it exits 0. SIGHUP is logged and ignored, except with --tls-cert: then "
        "it loads the certificate, key and client CA files again for new connections (connections "
        "already made keep theirs); a load that fails keeps the current ones, and one line says why.\n"
        "systemd: given sockets by socket activation (LISTEN_FDS) it serves those, and --host, "
        "--port, --unix, --backlog and --reuse-port are usage errors (the socket unit says where "
        "to listen); with NOTIFY_SOCKET set it sends READY=1 once listening, STATUS= with its "
        "counts, STOPPING=1, and WATCHDOG=1 at half WATCHDOG_USEC (Type=notify, WatchdogSec=).");

    greet::server_config config;
    int port = greet::default_port;
    double timeout = greet::default_timeout_seconds;
    double stop_delay = 0;
    auto* host = greet::cli::add_host_option(app, config.host, "Address or name to listen on");
    auto* port_opt = app.add_option("--port", port, "TCP or UDP port; 0 picks a free one")
                         ->capture_default_str()
                         ->check(greet::cli::port_number());
    auto* backlog = app.add_option("--backlog", config.backlog, "Connections queued before accept")
        ->capture_default_str()
        ->check(greet::cli::whole_number(0, 65535));
    app.add_option("--timeout", timeout,
                   "Seconds a client has to send its message (with TLS: to finish the handshake "
                   "and send its message)")
        ->capture_default_str()
        ->check(greet::cli::seconds_range(0.001));
    auto* unix_opt = app.add_option("--unix", config.unix_path,
                                    "Listen on this Unix stream socket instead of TCP")
                         ->excludes(host)
                         ->excludes(port_opt);
    auto* udp = app.add_flag("--udp", config.udp, "Answer UDP datagrams instead of TCP connections")
                    ->excludes(unix_opt);
    auto* reuse = greet::cli::add_reuse_port_option(app, config.reuse_port)->excludes(unix_opt);
    greet::cli::add_engine_options(app, config.threads, config.max_connections);
    auto* proxy = app.add_flag("--proxy-protocol", config.proxy_protocol,
                               "Every connection begins with a PROXY protocol header (v1 or v2) "
                               "from a trusted front door (HAProxy, nginx); logs show the client "
                               "it names")
                      ->excludes(udp);
    std::string proxy_from = "127.0.0.0/8,::1/128,unix";
    app.add_option("--proxy-from", proxy_from,
                   "Front doors trusted to send PROXY headers: CIDR networks and 'unix', "
                   "comma-separated")
        ->capture_default_str()
        ->check(greet::cli::networks())
        ->needs(proxy);
    auto* tls_cert = app.add_option("--tls-cert", config.tls.cert,
                                    "Serve TLS (1.2 and 1.3) with this certificate chain, PEM, leaf "
                                    "first; needs --tls-key. Over TCP or --unix, not --udp; behind "
                                    "--proxy-protocol the header comes first, then the handshake")
                         ->type_name("FILE")
                         ->excludes(udp);
    auto* tls_key = app.add_option("--tls-key", config.tls.key, "The certificate's private key, PEM")
                        ->type_name("FILE")
                        ->needs(tls_cert);
    tls_cert->needs(tls_key);
    app.add_option("--tls-client-ca", config.tls.client_ca,
                   "Require every client to show a certificate signed by a CA of this PEM file "
                   "(mutual TLS)")
        ->type_name("FILE")
        ->needs(tls_cert);
    app.add_flag("--quiet", config.quiet, "No line per served client (time outs and errors are still logged)");
    app.add_option("--metrics", config.metrics,
                   "Serve Prometheus metrics at http://HOST:PORT/metrics and /healthz (200 while "
                   "serving, 503 once stopping); PORT 0 picks a free one")
        ->type_name("HOST:PORT")
        ->check(CLI::Validator(
            [](std::string& text) -> std::string {
                try {
                    greet::split_host_port(text);
                    return "";
                } catch (const std::invalid_argument& e) {
                    return e.what();
                }
            },
            ""));

    app.add_option("--stop-delay", stop_delay,
                   "Seconds it goes on serving after SIGINT or SIGTERM, /healthz already 503, "
                   "before the listener closes: longer than a front door's health checks take to "
                   "mark it down")
        ->capture_default_str()
        ->check(greet::cli::seconds_range(0));

    if (auto code = greet::cli::parse(app, argc, argv)) return *code;
    config.port = static_cast<std::uint16_t>(port);
    config.stop_delay = greet::cli::seconds(stop_delay);
    config.timeout = greet::cli::seconds(timeout);
    std::vector<sock::socket> inherited;
    if (auto code = greet::cli::take_listen_fds(app, {host, port_opt, unix_opt, backlog, reuse}, inherited))
        return *code;
    config.proxy_from = sock::parse_networks(proxy_from);  // checked above

    try {
        greet::run_server(config, std::move(inherited));
    } catch (const std::exception& e) {
        greet::cli::report(name, e.what());
        return greet::cli::failure;
    }
    return greet::cli::ok;
}
