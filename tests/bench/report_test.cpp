// What greet-bench prints: the --json object and the summary.

#include "bench/report.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using bench::error_kind;
using bench::results;

results sample() {
    results r;
    r.completed = 1000;
    for (std::uint64_t v = 1; v <= 1000; ++v) r.latency.record(v);
    r.count_error(error_kind::refused);
    r.count_error(error_kind::refused);
    r.count_error(error_kind::timeout);
    r.duration_s = 2.0;
    return r;
}

TEST(Report, FailureLineCountsErrorsByKind) {
    EXPECT_EQ(bench::failure_line(sample()), "3 of 1003 requests failed: refused 2, timeout 1");
}

TEST(Report, FailureLineWhenNothingCompleted) {
    EXPECT_EQ(bench::failure_line(results{}), "no request completed");
}

TEST(Report, NoFailureLineWhenAllCompleted) {
    results r;
    r.completed = 5;
    EXPECT_EQ(bench::failure_line(r), "");
}

TEST(Report, RateIsCompletedPerSecond) {
    EXPECT_DOUBLE_EQ(sample().rate(), 500.0);
    EXPECT_EQ(results{}.rate(), 0.0);
    EXPECT_EQ(sample().error_total(), 3u);
}

TEST(Report, JsonHasTheAgreedShape) {
    // Percentiles are the tops of their buckets: 500 is in [500, 503], 900 in [896, 903].
    EXPECT_EQ(bench::format_json(sample()),
              "{\"completed\": 1000, \"errors\": 3, \"errors_by_kind\": {\"refused\": 2, "
              "\"reset\": 0, \"timeout\": 1, \"bad_reply\": 0, \"overload\": 0, \"handshake\": 0, \"other\": 0}, "
              "\"rate\": 500.000, \"duration_s\": 2.000000, \"latency_us\": {\"p50\": 503, "
              "\"p90\": 903, \"p99\": 991, \"p999\": 999, \"max\": 1000}}\n");
}

TEST(Report, JsonOfAnEmptyRunIsStillComplete) {
    const auto json = bench::format_json(results{});
    EXPECT_NE(json.find("\"completed\": 0, \"errors\": 0"), std::string::npos);
    EXPECT_NE(json.find("\"max\": 0}}\n"), std::string::npos);
}

TEST(Report, SummaryNamesOnlyTheKindsThatHappened) {
    const auto s = bench::format_summary(sample());
    EXPECT_NE(s.find("completed  1000 in 2.000 s\n"), std::string::npos) << s;
    EXPECT_NE(s.find("rate       500.0 /s\n"), std::string::npos) << s;
    EXPECT_NE(s.find("errors     3 (refused 2, timeout 1)\n"), std::string::npos) << s;
    EXPECT_NE(s.find("p99.9 999 us"), std::string::npos) << s;
    EXPECT_NE(s.find("max 1000 us\n"), std::string::npos) << s;
    EXPECT_EQ(s.find("reset"), std::string::npos) << s;
}

TEST(Report, SummaryOfNothingCompleted) {
    const auto s = bench::format_summary(results{});
    EXPECT_NE(s.find("errors     0\n"), std::string::npos) << s;
    EXPECT_NE(s.find("latency    none"), std::string::npos) << s;
}

TEST(Report, LatencyUnits) {
    EXPECT_EQ(bench::format_latency(87), "87 us");
    EXPECT_EQ(bench::format_latency(9'999), "9999 us");
    EXPECT_EQ(bench::format_latency(12'345), "12.35 ms");
    EXPECT_EQ(bench::format_latency(2'100'000), "2100.00 ms");
    EXPECT_EQ(bench::format_latency(12'000'000), "12.000 s");
}

}  // namespace
