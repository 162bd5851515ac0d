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

/// Reads until the server closes, within one deadline for the whole reply.
std::string read_reply(sock::socket& s, std::chrono::nanoseconds timeout) {
    const std::string server = s.describe();  // before the server may be gone
    const auto deadline = steady_clock::now() + timeout;
    std::string reply;
    while (reply.size() < max_reply) {
        const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
            deadline - steady_clock::now());
        // Past the deadline, still poll once without waiting: a zero timeout never blocks.
        s.settimeout(std::max(left, std::chrono::nanoseconds::zero()));
        std::string part = s.recv(max_reply - reply.size());
        if (part.empty()) break;
        reply += part;
    }
    if (reply.empty())
        throw std::runtime_error("recv " + server + ": closed without a reply");
    return reply;
}

sock::socket connect_stream(const client_config& config) {
    if (config.unix_path.empty())
        return sock::create_connection(sock::address(config.host, config.port), config.timeout);
    sock::socket s(sock::family::local, sock::kind::stream);
    s.settimeout(config.timeout);
    s.connect(sock::address::unix_path(config.unix_path));
    return s;
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
    sock::socket s = connect_stream(config);
    std::this_thread::sleep_for(config.delay);
    s.sendall(config.message);
    return read_reply(s, config.timeout);
}

}  // namespace greet
