#include "greet/server.hpp"

#include "greet/greeting.hpp"
#include "greet/host.hpp"
#include "greet/stop_signal.hpp"
#include "greet/unix_socket.hpp"

#include <sock/create.hpp>
#include <sock/error.hpp>

#include <array>
#include <iostream>
#include <span>
#include <string>
#include <string_view>

namespace greet {

namespace {

using std::chrono::steady_clock;

/// How often blocking waits come back to look at the stop flag: sock retries EINTR, so a
/// signal alone would not end an accept.
constexpr std::chrono::milliseconds stop_check_interval{200};
/// Bounds of the discard phase of graceful_close.
constexpr std::chrono::seconds drain_time{1};
constexpr std::size_t drain_limit = 64 * 1024 * 1024;

/// How log lines name a client; Unix clients are usually unnamed.
std::string peer_name(const sock::address& peer) {
    std::string name = peer.to_string();
    return name.empty() ? std::string("unix client") : name;
}

/// The message as a log shows it: short printable ones quoted, others by size.
std::string summary(std::string_view message) {
    bool printable = message.size() <= 32;
    for (char c : message) printable = printable && c >= ' ' && c <= '~';
    if (printable) return '"' + std::string(message) + '"';
    return std::to_string(message.size()) + " bytes";
}

void log_served(const std::string& peer, std::string_view message, std::string_view reply) {
    std::cout << peer << ": " << summary(message) << " -> " << reply << std::endl;
}

void log_failure(const std::string& text) { std::cerr << text << std::endl; }

void announce(const sock::socket& s) {
    std::cout << "listening on " << s.getsockname().to_string() << std::endl;
}

/// Accepts one client at a time, as the seed does, until stopped.
void serve_stream(sock::socket& listener, std::chrono::nanoseconds timeout) {
    listener.settimeout(stop_check_interval);
    while (!stop_requested()) {
        std::error_code ec;
        auto [conn, peer_address] = listener.accept(ec);
        if (ec == std::errc::timed_out) continue;
        if (ec) {
            log_failure("accept " + listener.describe() + ": " + ec.message());
            continue;
        }
        const std::string peer = peer_name(peer_address);
        try {
            std::string message = serve_connection(conn, timeout);
            log_served(peer, message, reply_to(message));
        } catch (const sock::timeout&) {
            log_failure(peer + ": time out");  // the seed's print 'time out'
        } catch (const sock::error& e) {
            log_failure(peer + ": " + e.what());
        }
    }
}

/// Replies to each datagram, as one message truncated at max_message bytes, until stopped.
void serve_datagrams(sock::socket& s) {
    s.settimeout(stop_check_interval);
    while (!stop_requested()) {
        std::string peer = "udp client";
        try {
            auto [message, sender] = s.recvfrom(max_message);
            peer = peer_name(sender);
            const std::string_view reply = reply_to(message);
            s.sendto(reply, sender);
            log_served(peer, message, reply);
        } catch (const sock::timeout&) {
            // Nothing arrived: time to look at the stop flag.
        } catch (const sock::error& e) {
            log_failure(peer + ": " + e.what());
        }
    }
}

}  // namespace

std::string serve_connection(sock::socket& conn, std::chrono::nanoseconds timeout) {
    conn.settimeout(timeout);
    std::string message = conn.recv(max_message);
    conn.sendall(reply_to(message));
    graceful_close(conn);
    return message;
}

void graceful_close(sock::socket& conn) {
    // Closing with unread input makes the kernel send RST instead of FIN, and an RST that
    // overtakes our reply destroys it in the client's receive queue. So we say we are done
    // (FIN after the reply), swallow what the client still sends until it closes too, and
    // give up after drain_time or drain_limit bytes.
    conn.shutdown(sock::shut::wr);
    const auto deadline = steady_clock::now() + drain_time;
    std::array<char, 64 * 1024> buf{};
    std::size_t drained = 0;
    while (drained < drain_limit) {
        const auto left = deadline - steady_clock::now();
        if (left <= steady_clock::duration::zero()) break;
        conn.settimeout(std::chrono::duration_cast<std::chrono::nanoseconds>(left));
        std::size_t n = 0;
        try {
            n = conn.recv_into(std::span<char>(buf));
        } catch (const sock::timeout&) {
            break;  // the client keeps its side open: it has had its chance
        }
        if (n == 0) break;
        drained += n;
    }
    conn.close();
}

void run_server(const server_config& config) {
    if (config.udp) {
        sock::socket s(family_for(config.host), sock::kind::dgram);
        s.bind(sock::address(config.host, config.port));
        announce(s);
        serve_datagrams(s);
    } else if (!config.unix_path.empty()) {
        remove_stale_unix_socket(config.unix_path);
        sock::server_options options;
        options.backlog = config.backlog;
        sock::socket listener =
            sock::create_server(sock::address::unix_path(config.unix_path), options);
        unix_socket_file file(config.unix_path);
        announce(listener);
        serve_stream(listener, config.timeout);
    } else {
        sock::server_options options;
        options.family = family_for(config.host);
        options.backlog = config.backlog;
        sock::socket listener =
            sock::create_server(sock::address(config.host, config.port), options);
        announce(listener);
        serve_stream(listener, config.timeout);
    }
}

}  // namespace greet
