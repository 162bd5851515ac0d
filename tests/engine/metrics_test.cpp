// The exposition format (Prometheus text 0.0.4) and the per-loop counters, no network.

#include <sock/metrics.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <stdexcept>

namespace {

using namespace std::chrono_literals;

TEST(MetricsText, ACounterHasHelpTypeAndItsSamples) {
    sock::metrics_text out;
    out.family("app_requests_total", sock::metric_type::counter, "Requests served.");
    out.sample(std::uint64_t{3}, {{"kind", "a"}});
    out.sample(std::uint64_t{18446744073709551615u}, {{"kind", "b"}, {"x", "y"}});
    out.family("app_open", sock::metric_type::gauge, "Open now.");
    out.sample(std::uint64_t{0});
    EXPECT_EQ(out.str(),
              "# HELP app_requests_total Requests served.\n"
              "# TYPE app_requests_total counter\n"
              "app_requests_total{kind=\"a\"} 3\n"
              "app_requests_total{kind=\"b\",x=\"y\"} 18446744073709551615\n"
              "# HELP app_open Open now.\n"
              "# TYPE app_open gauge\n"
              "app_open 0\n");
}

TEST(MetricsText, HelpAndLabelValuesAreEscaped) {
    sock::metrics_text out;
    out.family("g", sock::metric_type::gauge, "a \\ b\nc \"q\"");
    out.sample(1.5, {{"path", "C:\\x\n\"y\""}});
    EXPECT_EQ(out.str(),
              "# HELP g a \\\\ b\\nc \"q\"\n"
              "# TYPE g gauge\n"
              "g{path=\"C:\\\\x\\n\\\"y\\\"\"} 1.5\n");
}

TEST(MetricsText, NumbersAreWrittenAsPrometheusReadsThem) {
    sock::metrics_text out;
    out.family("g", sock::metric_type::gauge, "h");
    out.sample(0.0001);
    out.sample(5e-05);
    out.sample(HUGE_VAL);
    out.sample(-HUGE_VAL);
    out.sample(std::nan(""));
    EXPECT_EQ(out.str(), "# HELP g h\n# TYPE g gauge\ng 0.0001\ng 5e-05\ng +Inf\ng -Inf\ng NaN\n");
}

TEST(MetricsText, MistakesInNamesAreRefused) {
    sock::metrics_text out;
    EXPECT_THROW(out.sample(std::uint64_t{1}), std::invalid_argument);  // no family yet
    EXPECT_THROW(out.family("requests", sock::metric_type::counter, "h"), std::invalid_argument);
    EXPECT_THROW(out.family("9lives", sock::metric_type::gauge, "h"), std::invalid_argument);
    EXPECT_THROW(out.family("a-b", sock::metric_type::gauge, "h"), std::invalid_argument);
    EXPECT_THROW(out.family("", sock::metric_type::gauge, "h"), std::invalid_argument);
    out.family("ns:ok_total", sock::metric_type::counter, "h");
    EXPECT_THROW(out.family("ns:ok_total", sock::metric_type::counter, "h"), std::invalid_argument);
    EXPECT_THROW(out.sample(std::uint64_t{1}, {{"__reserved", "x"}}), std::invalid_argument);
    EXPECT_THROW(out.sample(std::uint64_t{1}, {{"a:b", "x"}}), std::invalid_argument);
    EXPECT_THROW(out.histogram({}), std::invalid_argument);  // not a histogram family
    out.family("h_seconds", sock::metric_type::histogram, "h");
    sock::histogram_snapshot h{{1.0}, {0, 0}, 0};
    EXPECT_THROW(out.histogram(h, {{"le", "1"}}), std::invalid_argument);
    EXPECT_THROW(out.sample(std::uint64_t{1}), std::invalid_argument);
    h.counts.pop_back();
    EXPECT_THROW(out.histogram(h), std::invalid_argument);
}

TEST(MetricsText, AHistogramHasCumulativeBucketsSumAndCount) {
    sock::loop_histogram a({0.001, 0.01});
    sock::loop_histogram b({0.001, 0.01});
    a.observe(500us);
    a.observe(1ms);  // on a bound: counted in that bucket (le means <=)
    a.observe(2ms);
    b.observe(20ms);
    b.observe(-5ns);  // a clock that went back counts as 0
    sock::histogram_snapshot s;
    a.add_to(s);
    b.add_to(s);
    ASSERT_EQ(s.counts, (std::vector<std::uint64_t>{3, 1, 1}));
    EXPECT_DOUBLE_EQ(s.sum, 0.0235);
    sock::metrics_text out;
    out.family("lat_seconds", sock::metric_type::histogram, "Latency.");
    out.histogram(s, {{"op", "x"}});
    EXPECT_EQ(out.str(),
              "# HELP lat_seconds Latency.\n"
              "# TYPE lat_seconds histogram\n"
              "lat_seconds_bucket{op=\"x\",le=\"0.001\"} 3\n"
              "lat_seconds_bucket{op=\"x\",le=\"0.01\"} 4\n"
              "lat_seconds_bucket{op=\"x\",le=\"+Inf\"} 5\n"
              "lat_seconds_sum{op=\"x\"} 0.0235\n"
              "lat_seconds_count{op=\"x\"} 5\n");
}

TEST(LoopHistogram, BoundsMustIncreaseAndSnapshotsMustMatch) {
    EXPECT_THROW(sock::loop_histogram({0.1, 0.1}), std::invalid_argument);
    EXPECT_THROW(sock::loop_histogram({HUGE_VAL}), std::invalid_argument);
    sock::loop_histogram a({1.0}), b({2.0});
    sock::histogram_snapshot s;
    a.add_to(s);
    EXPECT_THROW(b.add_to(s), std::invalid_argument);
    EXPECT_FALSE(sock::latency_buckets().empty());
}

TEST(LoopCounter, AddsAndReads) {
    sock::loop_counter c;
    c.add();
    c.add(41);
    EXPECT_EQ(c.value(), 42u);
}

TEST(PerLoop, SlotsNeverShareACacheLine) {
    sock::per_loop<sock::loop_counter> counters(3);
    ASSERT_EQ(counters.size(), 3u);
    const auto* first = reinterpret_cast<const char*>(&counters[0]);
    const auto* second = reinterpret_cast<const char*>(&counters[1]);
    EXPECT_GE(second - first, 64);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(first) % 64, 0u);
    counters[2].add(7);
    EXPECT_EQ(counters[2].value(), 7u);
    EXPECT_EQ(counters[0].value(), 0u);
}

}  // namespace
