#include "bench/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace bench {

std::size_t histogram::bucket_of(std::uint64_t value) noexcept {
    if (value < sub_count) return static_cast<std::size_t>(value);
    const unsigned power = std::min<unsigned>(static_cast<unsigned>(std::bit_width(value)) - 1, max_power);
    if (value >= (std::uint64_t{2} << max_power)) return bucket_count - 1;
    // Within [2^power, 2^(power+1)), sub-buckets are 2^(power - sub_bits) wide.
    const unsigned shift = power - sub_bits;
    const auto sub = static_cast<std::size_t>((value >> shift) - sub_count);
    return sub_count + (power - sub_bits) * sub_count + sub;
}

std::uint64_t histogram::lowest_in(std::size_t bucket) noexcept {
    if (bucket < sub_count) return bucket;
    const std::size_t rest = bucket - sub_count;
    const auto shift = static_cast<unsigned>(rest / sub_count);
    const auto sub = static_cast<std::uint64_t>(rest % sub_count);
    return (sub_count + sub) << shift;
}

std::uint64_t histogram::highest_in(std::size_t bucket) noexcept {
    if (bucket + 1 >= bucket_count) return UINT64_MAX;
    return lowest_in(bucket + 1) - 1;
}

void histogram::record(std::uint64_t value) noexcept {
    ++counts_[bucket_of(value)];
    ++count_;
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
    sum_ += static_cast<long double>(value);
}

void histogram::merge(const histogram& other) noexcept {
    for (std::size_t i = 0; i < bucket_count; ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
    sum_ += other.sum_;
}

double histogram::mean() const noexcept {
    return count_ == 0 ? 0.0 : static_cast<double>(sum_ / static_cast<long double>(count_));
}

std::uint64_t histogram::percentile(double percent) const noexcept {
    if (count_ == 0) return 0;
    const double p = std::clamp(percent, 0.0, 100.0);
    // Nearest rank: the smallest value with at least p% of the values at or below it.
    // (Less a hair, so that 99.9% of 1000 is rank 999 despite rounding in the product.)
    auto rank = static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_) - 1e-9));
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
        seen += counts_[i];
        if (seen >= rank) return std::clamp(highest_in(i), min(), max_);
    }
    return max_;
}

}  // namespace bench
