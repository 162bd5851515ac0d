#pragma once

// What a greet-bench run measured, and the two ways it is printed: for people, and --json.

#include "bench/histogram.hpp"
#include "bench/outcome.hpp"

#include <array>
#include <cstdint>
#include <string>

namespace bench {

struct results {
    std::uint64_t completed = 0;
    std::array<std::uint64_t, error_kind_count> errors{};
    /// Latency of the completed requests, in microseconds.
    histogram latency;
    /// Wall time from the first request's start to the last request's end.
    double duration_s = 0;
    /// A TLS run (greet-bench --tls): completed requests whose handshake resumed a session
    /// (--resume).
    bool tls = false;
    std::uint64_t resumed = 0;

    std::uint64_t error_total() const noexcept;
    /// Completed requests per second of duration_s; 0 when nothing was timed.
    double rate() const noexcept;
    void count_error(error_kind k) noexcept { ++errors[static_cast<std::size_t>(k)]; }
};

/// The summary for a terminal, several lines ending in '\n': completed, errors by kind, rate,
/// and latency percentiles (us below 10 ms, ms above).
std::string format_summary(const results& r);

/// One JSON object and '\n': {"completed": N, "errors": N, "errors_by_kind": {...}, "rate": R,
/// "duration_s": D, "latency_us": {"p50": ..., "p90": ..., "p99": ..., "p999": ..., "max": ...}},
/// and for a TLS run "resumed": N after "errors_by_kind".
std::string format_json(const results& r);

/// Why a run counts as failed, as one line without a newline ("3 of 1000 requests failed:
/// refused 2, timeout 1", "no request completed"); empty when every request completed and at
/// least one did. greet-bench prints it on stderr and exits 1.
std::string failure_line(const results& r);

/// A latency in microseconds as people read it: "87 us", "12.35 ms", "2.100 s".
std::string format_latency(std::uint64_t us);

}  // namespace bench
