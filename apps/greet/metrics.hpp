#pragma once

// greet-server's own counters, per loop (see sock::per_loop): what each greeting ended in,
// and how long it took from accept to the reply sent.

#include "greet/tls.hpp"

#include <sock/metrics.hpp>

#include <cstddef>

namespace greet {

/// One loop's counts; only that loop's thread writes them.
struct loop_counts {
    sock::loop_counter welcome, go_out;  ///< replies by kind
    sock::loop_counter timeouts;         ///< clients that said nothing in time
    sock::loop_counter recv_errors, sendall_errors, recvfrom_errors, sendto_errors;
    sock::loop_histogram latency{sock::latency_buckets()};  ///< accept to reply sent (TCP)
    tls::handshake_counts tls;           ///< with TLS
};

/// Every loop's counts, and their Prometheus families.
class metrics {
public:
    /// tls: also write the TLS handshake families.
    metrics(std::size_t loops, bool tls) : loops_(loops), tls_(tls) {}
    /// The calling loop's counts (on a server's loop thread: sock::server::current_loop()).
    loop_counts& here() noexcept;
    /// Appends greet_replies_total, greet_timeouts_total, greet_errors_total and
    /// greet_greeting_duration_seconds, summed over the loops (with TLS, the handshakes'
    /// families too: tls::write_metrics).
    void write(sock::metrics_text& out) const;

private:
    sock::per_loop<loop_counts> loops_;
    bool tls_;
};

}  // namespace greet
