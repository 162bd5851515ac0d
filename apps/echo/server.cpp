#include "echo/server.hpp"

#include "greet/cli.hpp"
#include "greet/engine.hpp"
#include "greet/host.hpp"
#include "greet/unix_socket.hpp"

#include <sock/async_ssl.hpp>
#include <sock/error.hpp>
#include <sock/server.hpp>

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace echo {

namespace {

/// One read's worth, as the floor's C echo server reads.
constexpr std::size_t buffer_size = 64 * 1024;

/// The idle timeout (no Nagle comes from the listener: see greet::interactive_engine).
void set_up(sock::async_socket& conn, const server_config& config) {
    if (config.idle_timeout.count() > 0) conn.settimeout(config.idle_timeout);
    else conn.settimeout(std::nullopt);
}

/// One read's worth for every connection of the thread; see serve_connection.
std::array<char, buffer_size>& scratch() {
    static thread_local std::array<char, buffer_size> buf;
    return buf;
}

}  // namespace

sock::task<> serve_connection(sock::async_socket conn, const server_config& config) {
    set_up(conn, config);
    // Reads complete only when data is there, so every connection of this thread can read
    // into one buffer, hot in cache, instead of 64 KiB of its own (1000 connections would
    // stream through 64 MiB). What the kernel does not take at once must outlive a wait, and
    // only that moves into the connection's own buffer: the floor's C server does the same.
    auto& buf = scratch();
    std::string pending;
    std::error_code ec;
    for (;;) {
        const std::size_t n = co_await conn.recv_into(buf, ec);
        if (ec || n == 0) break;
        const std::string_view data(buf.data(), n);
        // The socket underneath is non-blocking: this send takes what fits and never waits.
        const std::size_t sent = conn.raw().send(data, 0, ec);
        if (ec == std::errc::resource_unavailable_try_again) ec.clear();
        if (ec) break;
        if (sent == n) continue;
        pending.assign(data.substr(sent));
        co_await conn.sendall(pending, ec);
        if (ec) break;
    }
}

sock::task<> serve_tls_connection(sock::async_socket conn, const sock::ssl::context& ctx,
                                  const server_config& config) {
    set_up(conn, config);
    static const sock::ssl::wrap_options server_side{.server_side = true};
    std::error_code ec;
    sock::ssl::async_socket tls;
    try {
        tls = co_await sock::ssl::async_wrap_socket(ctx, std::move(conn), server_side);
    } catch (const sock::error&) {
        co_return;  // a failed handshake ends the connection, as any other failure does
    }
    // The record layer decrypts into the shared buffer; a send that has to wait keeps its
    // bytes in the connection's own string, as serve_connection does.
    auto& buf = scratch();
    std::string pending;
    for (;;) {
        const std::size_t n = co_await tls.recv_into(buf, ec);
        if (ec || n == 0) break;
        pending.assign(buf.data(), n);
        co_await tls.sendall(pending, ec);
        if (ec) break;
    }
}

void run_server(const server_config& config, std::vector<sock::socket> inherited) {
    sock::server_config engine =
        greet::interactive_engine(config.threads, config.max_connections, config.reuse_port);
    std::optional<greet::unix_socket_file> file;
    const bool activated = !inherited.empty();
    if (activated) {
        engine.inherited = std::move(inherited);
    } else if (!config.unix_path.empty()) {
        greet::remove_stale_unix_socket(config.unix_path);
        engine.listen.push_back(sock::address::unix_path(config.unix_path));
    } else {
        engine.listen.push_back(greet::listen_address(config.host, config.port, sock::kind::stream));
    }
    std::optional<greet::tls::server_context> tls_context;
    if (config.tls.enabled()) tls_context.emplace(config.tls);
    sock::connection_handler handler = [&config](sock::async_socket s) { return serve_connection(std::move(s), config); };
    if (tls_context)
        handler = [&config, &tls_context](sock::async_socket s) {
            return serve_tls_connection(std::move(s), tls_context->current(sock::server::current_loop()), config);
        };
    sock::server server(std::move(engine), std::move(handler));
    if (tls_context) tls_context->set_loops(server.loops());
    if (!activated && !config.unix_path.empty()) file.emplace(config.unix_path);
    for (const auto& where : server.addresses())
        greet::cli::write_stdout("listening on " + where.to_string() + "\n");
    server.run();
}

}  // namespace echo
