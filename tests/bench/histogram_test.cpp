// The latency histogram: bucket layout, exact extremes, percentiles of known distributions.

#include "bench/histogram.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

namespace {

using bench::histogram;

/// Within the histogram's promise: 1/64 of the value (and exact below 64).
void expect_near_value(std::uint64_t got, std::uint64_t want) {
    const double tolerance = static_cast<double>(want) / 64.0;
    EXPECT_LE(std::fabs(static_cast<double>(got) - static_cast<double>(want)), tolerance)
        << "got " << got << ", want about " << want;
}

TEST(Histogram, EmptyReportsZeros) {
    histogram h;
    EXPECT_EQ(h.count(), 0u);
    EXPECT_EQ(h.percentile(50), 0u);
    EXPECT_EQ(h.max(), 0u);
    EXPECT_EQ(h.min(), 0u);
    EXPECT_EQ(h.mean(), 0.0);
}

TEST(Histogram, BucketsTileTheRangeWithoutGaps) {
    EXPECT_EQ(histogram::lowest_in(0), 0u);
    for (std::size_t b = 0; b + 1 < histogram::bucket_count; ++b) {
        ASSERT_EQ(histogram::highest_in(b) + 1, histogram::lowest_in(b + 1)) << "bucket " << b;
        ASSERT_EQ(histogram::bucket_of(histogram::lowest_in(b)), b);
        ASSERT_EQ(histogram::bucket_of(histogram::highest_in(b)), b);
    }
}

TEST(Histogram, BucketsAreAtMostOneSixtyFourthWide) {
    for (std::size_t b = 0; b + 1 < histogram::bucket_count; ++b) {
        const auto low = histogram::lowest_in(b);
        const auto width = histogram::highest_in(b) - low + 1;
        if (low < 64) EXPECT_EQ(width, 1u);
        else EXPECT_LE(width * 64, low) << "bucket " << b;
    }
}

TEST(Histogram, SmallValuesAreExact) {
    histogram h;
    for (std::uint64_t v = 1; v <= 50; ++v) h.record(v);
    EXPECT_EQ(h.percentile(50), 25u);
    EXPECT_EQ(h.percentile(100), 50u);
    EXPECT_EQ(h.min(), 1u);
}

TEST(Histogram, NearestRank) {
    histogram h;
    for (std::uint64_t v : {1, 2, 3, 4}) h.record(v);
    EXPECT_EQ(h.percentile(50), 2u);
    EXPECT_EQ(h.percentile(75), 3u);
    EXPECT_EQ(h.percentile(76), 4u);
}

TEST(Histogram, OneValueIsReportedExactly) {
    histogram h;
    h.record(123'456);
    EXPECT_EQ(h.percentile(50), 123'456u);  // its bucket's top, clamped to the max
    EXPECT_EQ(h.percentile(99.9), 123'456u);
    EXPECT_EQ(h.max(), 123'456u);
}

TEST(Histogram, UniformDistribution) {
    histogram h;
    for (std::uint64_t v = 1; v <= 100'000; ++v) h.record(v);
    EXPECT_EQ(h.count(), 100'000u);
    expect_near_value(h.percentile(50), 50'000);
    expect_near_value(h.percentile(90), 90'000);
    expect_near_value(h.percentile(99), 99'000);
    expect_near_value(h.percentile(99.9), 99'900);
    EXPECT_EQ(h.max(), 100'000u);
    EXPECT_NEAR(h.mean(), 50'000.5, 1e-6);
}

TEST(Histogram, RankIsNotSpoiledByRounding) {
    // 99.9% of 1000 is rank 999 exactly; 999 sits alone at the top of its 8-wide bucket.
    histogram h;
    for (std::uint64_t v = 1; v <= 1000; ++v) h.record(v);
    EXPECT_EQ(h.percentile(99.9), 999u);
}

TEST(Histogram, BimodalDistribution) {
    histogram h;
    for (int i = 0; i < 900; ++i) h.record(100);
    for (int i = 0; i < 100; ++i) h.record(20'000);
    expect_near_value(h.percentile(50), 100);
    expect_near_value(h.percentile(90), 100);
    expect_near_value(h.percentile(91), 20'000);
    expect_near_value(h.percentile(99), 20'000);
    EXPECT_EQ(h.max(), 20'000u);
}

TEST(Histogram, ExponentialTail) {
    // Deterministic quantiles of an exponential distribution with mean 1000 us.
    histogram h;
    const int n = 100'000;
    for (int i = 0; i < n; ++i) {
        const double q = (i + 0.5) / n;
        h.record(static_cast<std::uint64_t>(std::llround(-1000.0 * std::log(1.0 - q))));
    }
    expect_near_value(h.percentile(50), 693);     // ln 2
    expect_near_value(h.percentile(90), 2303);    // ln 10
    expect_near_value(h.percentile(99), 4605);    // ln 100
    expect_near_value(h.percentile(99.9), 6908);  // ln 1000
}

TEST(Histogram, HugeValuesKeepAnExactMax) {
    histogram h;
    const std::uint64_t huge = std::uint64_t{1} << 50;
    h.record(huge);
    h.record(10);
    EXPECT_EQ(h.bucket_of(huge), histogram::bucket_count - 1);
    EXPECT_EQ(h.max(), huge);
    EXPECT_EQ(h.percentile(100), huge);
    EXPECT_EQ(h.percentile(50), 10u);
}

TEST(Histogram, MergeAddsCounts) {
    histogram a;
    histogram b;
    for (std::uint64_t v = 1; v <= 500; ++v) a.record(v);
    for (std::uint64_t v = 501; v <= 1000; ++v) b.record(v);
    a.merge(b);
    EXPECT_EQ(a.count(), 1000u);
    EXPECT_EQ(a.min(), 1u);
    EXPECT_EQ(a.max(), 1000u);
    expect_near_value(a.percentile(50), 500);
}

}  // namespace
