#include "greet/client.hpp"

#include "greet/host.hpp"

#include <sock/create.hpp>
#include <sock/error.hpp>
#include <sock/socket.hpp>

#include <algorithm>
#include <stdexcept>
#include <thread>

namespace greet {

namespace {

using std::chrono::steady_clock;

/// A connected stream and the server's name for error messages, taken while connected: once
/// the server has reset the connection, the socket can no longer say whom it was talking to.
struct stream {
    sock::socket s;
    std::string server;
};

/// Reads until the server closes, within one deadline for the whole reply.
std::string read_reply(stream& conn, std::chrono::nanoseconds timeout) {
    const auto deadline = steady_clock::now() + timeout;
    std::string reply;
    std::error_code ec;
    while (reply.size() < max_reply) {
        const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
            deadline - steady_clock::now());
        // Past the deadline, still poll once without waiting: a zero timeout never blocks.
        conn.s.settimeout(std::max(left, std::chrono::nanoseconds::zero()));
        std::string part = conn.s.recv(max_reply - reply.size(), 0, ec);
        if (ec) sock::throw_error(ec, "recv " + conn.server);
        if (part.empty()) break;
        reply += part;
    }
    if (reply.empty())
        throw std::runtime_error("recv " + conn.server + ": closed without a reply");
    return reply;
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
    std::this_thread::sleep_for(config.delay);
    std::error_code ec;
    conn.s.sendall(config.message, 0, ec);
    if (ec) sock::throw_error(ec, "sendall " + conn.server);
    return read_reply(conn, config.timeout);
}

}  // namespace greet
