#pragma once

// Latency histogram in the manner of HdrHistogram: log-linear buckets, fixed memory, O(1) record.

#include <array>
#include <cstddef>
#include <cstdint>

namespace bench {

/// Counts values (microseconds) in log-linear buckets: values below 64 each have their own
/// bucket; every later power of two [2^k, 2^(k+1)) is split into 64 equal sub-buckets, so a
/// reported value is within 1/64 (1.6%) of a recorded one. Min, max, count and sum are exact.
/// 16 KiB, no allocation; values past about 9 hours land in the last bucket.
class histogram {
public:
    static constexpr unsigned sub_bits = 6;
    static constexpr std::uint64_t sub_count = std::uint64_t{1} << sub_bits;  // 64
    /// Highest power of two tracked in its own buckets: 2^35 us is about 9.5 hours.
    static constexpr unsigned max_power = 35;
    static constexpr std::size_t bucket_count = sub_count + (max_power - sub_bits + 1) * sub_count;

    void record(std::uint64_t value) noexcept;
    /// Adds every count of other (one histogram per thread, merged at the end).
    void merge(const histogram& other) noexcept;

    std::uint64_t count() const noexcept { return count_; }
    std::uint64_t min() const noexcept { return count_ == 0 ? 0 : min_; }
    std::uint64_t max() const noexcept { return max_; }
    double mean() const noexcept;

    /// The value at or below which `percent` of the values fall (0 < percent <= 100): the
    /// highest value its bucket holds, clamped to [min, max]; 0 when empty. Nearest rank, so
    /// percentile(50) of {1, 2, 3, 4} is 2.
    std::uint64_t percentile(double percent) const noexcept;

    /// The bucket a value counts in, and the range of values a bucket holds (for tests).
    static std::size_t bucket_of(std::uint64_t value) noexcept;
    static std::uint64_t lowest_in(std::size_t bucket) noexcept;
    static std::uint64_t highest_in(std::size_t bucket) noexcept;

private:
    std::array<std::uint64_t, bucket_count> counts_{};
    std::uint64_t count_ = 0;
    std::uint64_t min_ = UINT64_MAX;
    std::uint64_t max_ = 0;
    long double sum_ = 0;
};

}  // namespace bench
