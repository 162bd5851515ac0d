#pragma once

// greet-client's work: connect, wait, send one message, read the reply.

#include <chrono>
#include <cstdint>
#include <string>

namespace greet {

struct client_config {
    std::string host{"localhost"};
    std::uint16_t port = 8001;
    /// Non-empty: connect to this Unix stream socket instead of TCP.
    std::string unix_path;
    /// Send one UDP datagram instead of using a connection.
    bool udp = false;
    /// Pause between connecting and sending (the seed's time.sleep(2)).
    std::chrono::nanoseconds delay{0};
    /// Bounds the connect, and the wait for the whole reply.
    std::chrono::nanoseconds timeout = std::chrono::seconds(5);
    std::string message{"1"};
    /// Speak TLS over the stream; the server's certificate must verify.
    bool tls = false;
    /// The CAs trusted (PEM); empty: the system's store.
    std::string cafile;
    /// The name sent (SNI) and checked against the certificate; empty: host.
    std::string server_name;
};

/// The longest reply read; greet replies are a few bytes.
inline constexpr std::size_t max_reply = 64 * 1024;

/// Sends config.message and returns the reply: over a stream, everything up to the server's
/// orderly close (at most max_reply bytes; with TLS, its close_notify); over UDP, one
/// datagram. Throws sock::error (with the call, address and cause) when connecting, the
/// handshake, sending or receiving fails or times out.
std::string ask(const client_config& config);

}  // namespace greet
