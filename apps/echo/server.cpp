#include "echo/server.hpp"

#include "greet/descriptor_limit.hpp"
#include "greet/host.hpp"
#include "greet/unix_socket.hpp"

#include <sock/server.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace echo {

namespace {

/// One read's worth, as the floor's C echo server reads.
constexpr std::size_t buffer_size = 64 * 1024;

void write_line(int fd, std::string line) {
    line += '\n';
    [[maybe_unused]] auto n = ::write(fd, line.data(), line.size());
}

}  // namespace

sock::task<> serve_connection(sock::async_socket conn, const server_config& config) {
    if (config.idle_timeout.count() > 0) conn.settimeout(config.idle_timeout);
    else conn.settimeout(std::nullopt);
    if (conn.raw().family() != sock::family::local) {
        // Ping-pong sends small messages while earlier bytes may be unacknowledged: Nagle
        // would hold them back for a delayed ACK.
        const int one = 1;
        ::setsockopt(conn.fileno(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    // Reads complete only when data is there, so every connection of this thread can read
    // into one buffer, hot in cache, instead of 64 KiB of its own (1000 connections would
    // stream through 64 MiB). What the kernel does not take at once must outlive a wait, and
    // only that moves into the connection's own buffer: the floor's C server does the same.
    static thread_local std::array<char, buffer_size> scratch;
    std::string pending;
    std::error_code ec;
    for (;;) {
        const std::size_t n = co_await conn.recv_into(scratch, ec);
        if (ec || n == 0) break;
        const std::string_view data(scratch.data(), n);
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

void run_server(const server_config& config, std::vector<sock::socket> inherited) {
    sock::server_config engine;
    engine.threads = config.threads;
    engine.max_connections = config.max_connections != 0
                                 ? config.max_connections
                                 : greet::connection_budget(greet::raise_descriptor_limit());
    // TCP_DEFER_ACCEPT hands a connection over only once its first bytes are there. Echo
    // clients do speak first, but a client that connects and waits (a connection pool warming
    // up, a latency probe) would then sit unseen in the kernel: not counted by
    // --max-connections, not timed by --timeout, silently dropped after the kernel's retries.
    engine.defer_accept = false;
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
    engine.reuse_port = config.reuse_port;
    engine.log = [](std::string_view line) { write_line(2, std::string(line)); };
    sock::server server(std::move(engine), [&config](sock::async_socket s) {
        return serve_connection(std::move(s), config);
    });
    if (!activated && !config.unix_path.empty()) file.emplace(config.unix_path);
    for (const auto& where : server.addresses()) write_line(1, "listening on " + where.to_string());
    server.run();
}

}  // namespace echo
