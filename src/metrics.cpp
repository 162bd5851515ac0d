#include <sock/metrics.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <system_error>

namespace sock SOCK_API {

namespace {

bool name_char(char c, bool first, bool colon) noexcept {
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    return letter || (colon && c == ':') || (!first && c >= '0' && c <= '9');
}

bool valid_name(std::string_view s, bool colon) noexcept {
    if (s.empty()) return false;
    for (std::size_t i = 0; i < s.size(); ++i)
        if (!name_char(s[i], i == 0, colon)) return false;
    return true;
}

// What the format escapes: backslash and newline everywhere, the double quote in label values.
void append_escaped(std::string& out, std::string_view s, bool quote) {
    for (char c : s) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else if (quote && c == '"') out += "\\\"";
        else out += c;
    }
}

void append_number(std::string& out, double v) {
    if (std::isnan(v)) {
        out += "NaN";
    } else if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
    } else {
        char buf[32];
        // Shortest that reads back, written as Go (Prometheus) writes it: 0.0001, 5e-05.
        const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);
        out.append(buf, r.ptr);
    }
}

void append_number(std::string& out, std::uint64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

}  // namespace

loop_histogram::loop_histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(std::make_unique<loop_counter[]>(bounds_.size() + 1)) {
    for (std::size_t i = 0; i < bounds_.size(); ++i) {
        if (!std::isfinite(bounds_[i]) || (i > 0 && bounds_[i] <= bounds_[i - 1]))
            throw std::invalid_argument("loop_histogram: bounds must be finite and increasing");
        bounds_ns_.push_back(static_cast<std::int64_t>(std::llround(bounds_[i] * 1e9)));
    }
}

void loop_histogram::observe(std::chrono::nanoseconds d) noexcept {
    const std::int64_t ns = std::max<std::int64_t>(d.count(), 0);
    // A handful of bounds: a forward scan beats a binary search, and fast answers come first.
    std::size_t i = 0;
    while (i < bounds_ns_.size() && ns > bounds_ns_[i]) ++i;
    counts_[i].add();
    sum_ns_.add(static_cast<std::uint64_t>(ns));
}

void loop_histogram::add_to(histogram_snapshot& s) const {
    if (s.bounds.empty() && s.counts.empty()) {
        s.bounds = bounds_;
        s.counts.assign(bounds_.size() + 1, 0);
    }
    if (s.bounds != bounds_) throw std::invalid_argument("loop_histogram: adding different buckets");
    for (std::size_t i = 0; i <= bounds_.size(); ++i) s.counts[i] += counts_[i].value();
    s.sum += static_cast<double>(sum_ns_.value()) / 1e9;
}

std::vector<double> latency_buckets() {
    return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
            0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,    5};
}

void metrics_text::family(std::string_view name, metric_type type, std::string_view help) {
    if (!valid_name(name, true))
        throw std::invalid_argument("metrics_text: \"" + std::string(name) + "\" is not a metric name");
    if (type == metric_type::counter && !name.ends_with("_total"))
        throw std::invalid_argument("metrics_text: counter \"" + std::string(name) + "\" must end in _total");
    if (std::find(names_.begin(), names_.end(), name) != names_.end())
        throw std::invalid_argument("metrics_text: family \"" + std::string(name) + "\" written twice");
    names_.emplace_back(name);
    name_ = name;
    type_ = type;
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    append_escaped(out_, help, false);
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += type == metric_type::counter ? " counter\n" : type == metric_type::gauge ? " gauge\n" : " histogram\n";
}

void metrics_text::begin_sample(std::string_view suffix, std::initializer_list<metric_label> labels,
                                const metric_label* extra) {
    if (name_.empty()) throw std::invalid_argument("metrics_text: a sample before any family");
    out_ += name_;
    out_ += suffix;
    if (labels.size() == 0 && extra == nullptr) {
        out_ += ' ';
        return;
    }
    char sep = '{';
    auto put = [&](const metric_label& l) {
        if (!valid_name(l.name, false) || l.name.starts_with("__") ||
            (type_ == metric_type::histogram && l.name == "le" && &l != extra))
            throw std::invalid_argument("metrics_text: \"" + std::string(l.name) + "\" is not a label name here");
        out_ += sep;
        out_ += l.name;
        out_ += "=\"";
        append_escaped(out_, l.value, true);
        out_ += '"';
        sep = ',';
    };
    for (const auto& l : labels) put(l);
    if (extra != nullptr) put(*extra);
    out_ += "} ";
}

void metrics_text::sample(std::uint64_t value, std::initializer_list<metric_label> labels) {
    if (type_ == metric_type::histogram) throw std::invalid_argument("metrics_text: sample() in a histogram");
    begin_sample("", labels, nullptr);
    append_number(out_, value);
    out_ += '\n';
}

void metrics_text::sample(double value, std::initializer_list<metric_label> labels) {
    if (type_ == metric_type::histogram) throw std::invalid_argument("metrics_text: sample() in a histogram");
    begin_sample("", labels, nullptr);
    append_number(out_, value);
    out_ += '\n';
}

void metrics_text::histogram(const histogram_snapshot& h, std::initializer_list<metric_label> labels) {
    if (type_ != metric_type::histogram) throw std::invalid_argument("metrics_text: histogram() outside a histogram");
    if (h.counts.size() != h.bounds.size() + 1)
        throw std::invalid_argument("metrics_text: a histogram needs one count per bound and one for +Inf");
    std::uint64_t cumulative = 0;
    std::string le;
    for (std::size_t i = 0; i < h.counts.size(); ++i) {
        cumulative += h.counts[i];
        le.clear();
        append_number(le, i < h.bounds.size() ? h.bounds[i] : HUGE_VAL);
        const metric_label bound{"le", le};
        begin_sample("_bucket", labels, &bound);
        append_number(out_, cumulative);
        out_ += '\n';
    }
    begin_sample("_sum", labels, nullptr);
    append_number(out_, h.sum);
    out_ += '\n';
    begin_sample("_count", labels, nullptr);
    append_number(out_, cumulative);  // the +Inf bucket, as the format requires
    out_ += '\n';
}

}  // namespace sock
