#include "bench/report.hpp"

#include <cstdio>
#include <numeric>

namespace bench {

namespace {

struct percentile_row {
    const char* json;
    const char* label;
    double percent;
};
constexpr percentile_row rows[] = {
    {"p50", "p50", 50.0}, {"p90", "p90", 90.0}, {"p99", "p99", 99.0}, {"p999", "p99.9", 99.9}};

std::string printf_string(const char* format, double value) {
    char buf[64];
    const int n = std::snprintf(buf, sizeof buf, format, value);
    return std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
}

}  // namespace

std::uint64_t results::error_total() const noexcept {
    return std::accumulate(errors.begin(), errors.end(), std::uint64_t{0});
}

double results::rate() const noexcept {
    return duration_s > 0 ? static_cast<double>(completed) / duration_s : 0.0;
}

std::string failure_line(const results& r) {
    const std::uint64_t failed = r.error_total();
    if (failed == 0) return r.completed == 0 ? "no request completed" : "";
    std::string line = std::to_string(failed) + " of " + std::to_string(failed + r.completed) +
                       " requests failed:";
    const char* separator = " ";
    for (std::size_t k = 0; k < error_kind_count; ++k) {
        if (r.errors[k] == 0) continue;
        line += separator + std::string(error_kind_names[k]) + " " + std::to_string(r.errors[k]);
        separator = ", ";
    }
    return line;
}

std::string format_latency(std::uint64_t us) {
    if (us < 10'000) return std::to_string(us) + " us";
    if (us < 10'000'000) return printf_string("%.2f ms", static_cast<double>(us) / 1e3);
    return printf_string("%.3f s", static_cast<double>(us) / 1e6);
}

std::string format_summary(const results& r) {
    std::string s = "completed  " + std::to_string(r.completed) + " in " +
                    printf_string("%.3f", r.duration_s) + " s\n";
    s += "rate       " + printf_string("%.1f", r.rate()) + " /s\n";
    s += "errors     " + std::to_string(r.error_total());
    if (r.error_total() != 0) {
        const char* sep = " (";
        for (std::size_t i = 0; i < error_kind_count; ++i) {
            if (r.errors[i] == 0) continue;
            s += sep;
            s += error_kind_names[i];
            s += ' ' + std::to_string(r.errors[i]);
            sep = ", ";
        }
        s += ')';
    }
    s += '\n';
    if (r.tls) s += "resumed    " + std::to_string(r.resumed) + " of " + std::to_string(r.completed) + " completed\n";
    if (r.latency.count() == 0) {
        s += "latency    none (nothing completed)\n";
        return s;
    }
    s += "latency   ";
    for (const auto& row : rows) {
        s += ' ';
        s += row.label;
        s += ' ' + format_latency(r.latency.percentile(row.percent)) + ',';
    }
    s += " max " + format_latency(r.latency.max()) + '\n';
    return s;
}

std::string format_json(const results& r) {
    std::string s = "{\"completed\": " + std::to_string(r.completed) +
                    ", \"errors\": " + std::to_string(r.error_total()) + ", \"errors_by_kind\": {";
    for (std::size_t i = 0; i < error_kind_count; ++i) {
        if (i != 0) s += ", ";
        s += '"';
        s += error_kind_names[i];
        s += "\": " + std::to_string(r.errors[i]);
    }
    s += '}';
    if (r.tls) s += ", \"resumed\": " + std::to_string(r.resumed);
    s += ", \"rate\": " + printf_string("%.3f", r.rate());
    s += ", \"duration_s\": " + printf_string("%.6f", r.duration_s);
    s += ", \"latency_us\": {";
    for (const auto& row : rows) {
        s += '"';
        s += row.json;
        s += "\": " + std::to_string(r.latency.percentile(row.percent)) + ", ";
    }
    s += "\"max\": " + std::to_string(r.latency.max()) + "}}\n";
    return s;
}

}  // namespace bench
