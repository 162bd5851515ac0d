#include "greet/client.hpp"

#include "greet/host.hpp"

#include <sock/create.hpp>
#include <sock/error.hpp>
#include <sock/socket.hpp>
#include <sock/ssl.hpp>

#include <algorithm>
#include <stdexcept>
#include <thread>
#include <type_traits>

namespace greet {

namespace {

using std::chrono::steady_clock;

/// A connected stream and the server's name for error messages, taken while connected: once
/// the server has reset the connection, the socket can no longer say whom it was talking to.
struct stream {
    sock::socket s;
    std::string server;
};

/// Reads until the server closes, within one deadline for the whole reply. Socket: a
/// sock::socket or a sock::ssl::socket.
template <class Socket>
std::string read_reply(Socket& s, const std::string& server, std::chrono::nanoseconds timeout) {
    const auto deadline = steady_clock::now() + timeout;
    std::string reply;
    [[maybe_unused]] std::error_code ec;
    while (reply.size() < max_reply) {
        const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
            deadline - steady_clock::now());
        // Past the deadline, still poll once without waiting: a zero timeout never blocks.
        s.settimeout(std::max(left, std::chrono::nanoseconds::zero()));
        std::string part;
        if constexpr (std::is_same_v<Socket, sock::socket>) {
            part = s.recv(max_reply - reply.size(), 0, ec);
            if (ec) sock::throw_error(ec, "recv " + server);
        } else {
            part = s.recv(max_reply - reply.size());  // throws in TLS's words
        }
        if (part.empty()) break;
        reply += part;
    }
    if (reply.empty())
        throw std::runtime_error("recv " + server + ": closed without a reply");
    return reply;
}

/// Sends the message and reads the reply.
template <class Socket>
std::string exchange(Socket& s, const std::string& server, const client_config& config) {
    std::this_thread::sleep_for(config.delay);
    if constexpr (std::is_same_v<Socket, sock::socket>) {
        std::error_code ec;
        s.sendall(config.message, 0, ec);
        if (ec) sock::throw_error(ec, "sendall " + server);
    } else {
        s.sendall(config.message);  // throws in TLS's words
    }
    return read_reply(s, server, config.timeout);
}

stream connect_stream(const client_config& config) {
    if (config.unix_path.empty()) {
        const sock::address target(config.host, config.port);
        stream conn{sock::create_connection(target, config.timeout), target.to_string()};
        std::error_code ec;
        if (auto peer = conn.s.getpeername(ec); !ec) conn.server = peer.to_string();
        return conn;
    }
    const auto target = sock::address::unix_path(config.unix_path);
    stream conn{sock::socket(sock::family::local, sock::kind::stream), target.to_string()};
    conn.s.settimeout(config.timeout);
    conn.s.connect(target);
    return conn;
}

}  // namespace

std::string ask(const client_config& config) {
    if (config.udp) {
        sock::socket s(family_for(config.host), sock::kind::dgram);
        s.settimeout(config.timeout);
        // Connected, so an ICMP "port unreachable" comes back as "Connection refused".
        s.connect(sock::address(config.host, config.port));
        std::this_thread::sleep_for(config.delay);
        s.send(config.message);
        return s.recv(max_reply);
    }
    stream conn = connect_stream(config);
    if (!config.tls) return exchange(conn.s, conn.server, config);
    const auto ctx = sock::ssl::create_default_context(sock::ssl::purpose::server_auth, config.cafile);
    sock::ssl::wrap_options options;
    options.server_hostname = config.server_name.empty() ? config.host : config.server_name;
    conn.s.settimeout(config.timeout);  // bounds the handshake
    auto tls = ctx.wrap_socket(std::move(conn.s), options);
    return exchange(tls, conn.server, config);
}

}  // namespace greet
