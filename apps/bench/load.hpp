#pragma once

// greet-bench's engine: many clients on one sock::event_loop, closed or open loop.

#include "bench/report.hpp"

#include <sock/address.hpp>
#include <sock/ssl.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace bench {

enum class mode { greet, echo };

struct load_config {
    /// A numeric address or a Unix path: resolve names before (sock::getaddrinfo).
    sock::address target;
    bench::mode mode = mode::greet;
    /// greet: what each client sends, and the reply that counts as success.
    std::string message{"1"};
    std::string expect{"welcome to server!"};
    /// echo: bytes per round trip.
    std::size_t size = 16;
    /// Closed loop: clients at once. Open loop: the most requests in flight.
    std::size_t connections = 64;
    /// Stop after this many requests (successes and errors), or after `duration`, whichever
    /// comes first. count 0: no count; duration 0: no time limit (then count must be set).
    std::uint64_t count = 0;
    std::chrono::nanoseconds duration = std::chrono::seconds(5);
    /// greet: wait this long between connecting and sending.
    std::chrono::nanoseconds delay{0};
    /// greet: > 0 starts this many requests per second on a fixed schedule (open loop).
    double rate = 0;
    /// Bound of one request, connect included.
    std::chrono::nanoseconds timeout = std::chrono::seconds(10);
    /// greet: speak TLS with this client context, a full handshake per request...
    std::optional<sock::ssl::context> tls;
    /// ...sending this name (SNI) and checking the certificate against it...
    std::string server_name;
    /// ...or, once a client has a session, resuming it (its previous request's).
    bool resume = false;
    /// A live progress line on stderr each second (for a terminal).
    bool progress = false;
};

/// Runs the load on a new event loop on this thread and returns what it measured. Request
/// failures are counted, not thrown; throws only when the run cannot be set up.
results run_load(const load_config& config);

}  // namespace bench
