// chat-server: every line a client sends goes to every other client, on event loops.

#include "chat/server.hpp"
#include "greet/cli.hpp"

#include <exception>
#include <string>

int main(int argc, char** argv) {
    const std::string name = "chat-server";
    greet::cli::ignore_sigpipe();  // a closed stdout (chat-server | head -1) must not kill it
    CLI::App app{"A chat room: every line (ending in a newline) a client sends goes, unchanged "
                 "and in order, to every other client connected. A line longer than " +
                     std::to_string(chat::max_line) +
                     " bytes gets an error line and ends its connection; a client that does "
                     "not read is disconnected once --max-backlog bytes wait for it.",
                 name};
    greet::cli::add_conventions(
        app, name,
        "Signals: SIGINT or SIGTERM stop it: clients may go on for 5 s (a second signal "
        "cancels them), then it exits 0. SIGHUP is logged and ignored: there is nothing to "
"reload.\n"
        "systemd: given sockets by socket activation (LISTEN_FDS) it serves those, and --host, --port and --reuse-port are "
        "usage errors (the socket unit says where to listen); with NOTIFY_SOCKET set it tells "
        "the service manager READY=1, STATUS=, STOPPING=1 and WATCHDOG=1, as greet-server does.");

    chat::server_config config;
    int port = config.port;
    auto* host = greet::cli::add_host_option(app, config.host, "Address or name to listen on");
    auto* port_opt = app.add_option("--port", port, "TCP port; 0 picks a free one")
        ->capture_default_str()
        ->check(greet::cli::port_number());
    auto* reuse = greet::cli::add_reuse_port_option(app, config.reuse_port);
    greet::cli::add_engine_options(app, config.threads, config.max_connections);
    app.add_option("--max-backlog", config.max_backlog,
                   "Bytes that may wait for one client (queued or being sent); a client further "
                   "behind is disconnected")
        ->capture_default_str()
        ->check(greet::cli::whole_number(chat::max_line, std::uint64_t{1} << 40));

    if (auto code = greet::cli::parse(app, argc, argv)) return *code;
    config.port = static_cast<std::uint16_t>(port);
    std::vector<sock::socket> inherited;
    if (auto code = greet::cli::take_listen_fds(app, {host, port_opt, reuse}, inherited))
        return *code;

    try {
        chat::run_server(config, std::move(inherited));
    } catch (const std::exception& e) {
        greet::cli::report(name, e.what());
        return greet::cli::failure;
    }
    return greet::cli::ok;
}
