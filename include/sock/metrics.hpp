#pragma once

// Counters that cost the hot path nothing, and Prometheus' text exposition format 0.0.4 to
// publish them. Each event loop counts into its own slot (only its thread writes it); a
// scrape reads every slot and sums, as HAProxy's per-thread counters do.

#include <sock/export.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sock SOCK_API {

/// A count only one thread writes and any thread reads. add() is a relaxed load and store, no
/// read-modify-write (no lock prefix), so it costs what ++ on a plain integer does; two
/// writers would lose counts, so each loop gets its own (see per_loop).
class loop_counter {
public:
    void add(std::uint64_t n = 1) noexcept {
        value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

/// A histogram summed over loops: bucket upper bounds in seconds, counts per bucket (not
/// cumulative; the last one is +Inf), and the sum of the observations in seconds.
struct histogram_snapshot {
    std::vector<double> bounds;
    std::vector<std::uint64_t> counts;
    double sum = 0;
};

/// Durations counted in fixed buckets by one writer thread, as loop_counter. The buckets are
/// allocated once, at construction; observe() never allocates.
class loop_histogram {
public:
    /// bounds: upper bounds in seconds, increasing; +Inf is added after them.
    explicit loop_histogram(std::vector<double> bounds);
    void observe(std::chrono::nanoseconds d) noexcept;
    /// Adds this histogram's counts into s (s empty: takes this one's bounds first).
    void add_to(histogram_snapshot& s) const;

private:
    std::vector<double> bounds_;
    std::vector<std::int64_t> bounds_ns_;
    std::unique_ptr<loop_counter[]> counts_;  // one per bound, then +Inf
    loop_counter sum_ns_;
};

/// Buckets for latencies on one host: 50 µs to 5 s.
std::vector<double> latency_buckets();

/// One T per event loop of a server, each on its own cache lines, so that loops counting at
/// once never share a line. Index with server::current_loop() on a loop's thread.
template <class T>
class per_loop {
public:
    explicit per_loop(std::size_t loops) : slots_(std::make_unique<slot[]>(loops)), size_(loops) {}
    T& operator[](std::size_t loop) noexcept { return slots_[loop].value; }
    const T& operator[](std::size_t loop) const noexcept { return slots_[loop].value; }
    std::size_t size() const noexcept { return size_; }

private:
    struct alignas(64) slot {
        T value{};
    };
    std::unique_ptr<slot[]> slots_;
    std::size_t size_;
};

enum class metric_type { counter, gauge, histogram };

/// A label of a sample: name="value".
struct metric_label {
    std::string_view name;
    std::string_view value;
};

/// Writes Prometheus' text exposition format 0.0.4 (Content-Type text/plain; version=0.0.4):
/// families, each with its # HELP and # TYPE lines, then its samples. Names and label names
/// are checked (std::invalid_argument: a program's mistake, not a runtime condition); help
/// text and label values are escaped.
class metrics_text {
public:
    /// Starts a family. Counter names end in _total, as Prometheus' own libraries write them.
    void family(std::string_view name, metric_type type, std::string_view help);
    /// A sample of the current counter or gauge family.
    void sample(std::uint64_t value, std::initializer_list<metric_label> labels = {});
    void sample(double value, std::initializer_list<metric_label> labels = {});
    /// The samples of the current histogram family: _bucket{le=...} (cumulative), _sum, _count.
    void histogram(const histogram_snapshot& h, std::initializer_list<metric_label> labels = {});
    /// The exposition so far.
    const std::string& str() const noexcept { return out_; }

private:
    void begin_sample(std::string_view suffix, std::initializer_list<metric_label> labels,
                      const metric_label* extra);
    std::string out_;
    std::string name_;
    metric_type type_ = metric_type::gauge;
    std::vector<std::string> names_;  // families written, to refuse a second one of a name
};

}  // namespace sock
