// resolve-stall: what resolving names costs an event loop. Inside a private /etc/hosts (a
// mount namespace, root only) holding --names distinct names, it starts that many look-ups at
// once on one sock::event_loop, one per name, with each backend in turn:
//
//   blocking  sock::getaddrinfo called on the loop's thread (what stalling looks like)
//   ares      c-ares 1.18 driven by the loop (ares_loop.hpp)
//   pool      sock::async_getaddrinfo: the system's getaddrinfo on resolver threads
//   idle      no look-ups: the ticker's own lateness on an idle loop, for scale
//
// while a periodic timer (--period, 1 ms) on the same loop records how late each tick fires:
// the longest lateness is the longest time the loop could run nothing else. Each look-up's
// latency counts from the moment the batch was started (all were asked for at once) to the
// moment its coroutine has the answer. Every answer must be exactly the name's two addresses
// in the hosts file; any other answer or an error is a failure (exit 1).

#include "ares_loop.hpp"
#include "greet/cli.hpp"

#include <sock/address.hpp>
#include <sock/coro.hpp>
#include <sock/error.hpp>
#include <sock/event_loop.hpp>
#include <sock/resolve.hpp>
#include <sock/task.hpp>

#include <sched.h>
#include <sys/resource.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

const std::string name = "resolve-stall";

/// Exit status when no private /etc/hosts can be had (not root, no mount namespaces): ctest
/// reports the test as skipped.
constexpr int unsupported = 77;

enum class backend { idle, blocking, ares, pool };

const char* backend_name(backend b) {
    switch (b) {
    case backend::idle: return "idle";
    case backend::blocking: return "blocking";
    case backend::ares: return "ares";
    case backend::pool: return "pool";
    }
    return "?";
}

double ms(clock_type::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// ---- the hosts file ----

std::string host_name(std::size_t i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "host-%04zu.sock-bench", i);
    return buf;
}
// Name i maps to one IPv4 address in 127/8 and one IPv6 address, both its own.
std::string host_v4(std::size_t i) {
    const std::size_t n = i + 1;
    return "127." + std::to_string(1 + n / 65536) + "." + std::to_string(n / 256 % 256) + "." +
           std::to_string(n % 256);
}
std::string host_v6(std::size_t i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "fd00:be::%zx", i + 1);  // inet_ntop's own spelling
    return buf;
}

std::string hosts_file(std::size_t names) {
    std::ostringstream out;
    out << "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        << "# resolve-stall: " << names << " names, an IPv4 and an IPv6 address each\n";
    for (std::size_t i = 0; i < names; ++i) {
        const auto h = host_name(i);
        out << host_v4(i) << '\t' << h << '\n' << host_v6(i) << '\t' << h << '\n';
    }
    return out.str();
}

/// The answer name i must get: its two addresses with the port, in a set's order.
std::vector<std::string> expected_answer(std::size_t i, std::uint16_t port) {
    std::vector<std::string> e{host_v4(i) + ":" + std::to_string(port),
                               "[" + host_v6(i) + "]:" + std::to_string(port)};
    std::sort(e.begin(), e.end());
    return e;
}

// ---- the ticker: a periodic timer that records how late it fires ----

struct tick {
    clock_type::time_point deadline;
    clock_type::time_point fired;
};

struct ticker : sock::timer {
    sock::event_loop* loop;
    clock_type::duration period;
    clock_type::time_point deadline{};
    bool recording = false;
    std::vector<tick> ticks;

    ticker(sock::event_loop& l, clock_type::duration p) : loop(&l), period(p) {
        fire = [](sock::timer& t) {
            auto& k = static_cast<ticker&>(t);
            const auto now = clock_type::now();
            if (k.recording) k.ticks.push_back({k.deadline, now});
            k.arm(now);
        };
    }
    ticker(const ticker&) = delete;
    ticker& operator=(const ticker&) = delete;
    ~ticker() { loop->cancel(*this); }

    /// Next tick one period after now; the loop counts from its iteration's start, so the
    /// time this iteration has already taken is added, or a long stall would count twice.
    void arm(clock_type::time_point now) {
        deadline = now + period;
        loop->start(*this, (now - loop->now()) + period);
    }
};

// ---- one run of one backend ----

struct lookup_slot {
    double started_ms = 0;  // when the look-up was asked for, from the start of the batch
    double latency_ms = 0;
    std::string failure;  // empty when the answer was right
};

struct run_result {
    backend which{};
    std::size_t lookups = 0;
    std::size_t failed = 0;
    std::string first_failure;
    double total_ms = 0;
    double latency_p50 = 0, latency_p99 = 0, latency_max = 0;
    double stall_max = 0, stall_p99 = 0;
    std::size_t ticks = 0;
    double issue_ms = 0;     // until the last look-up was asked for
    double loop_cpu_ms = 0;  // CPU time of the loop's thread over the batch
    double cpu_ms = 0;       // CPU time of the whole process (resolver threads too)
};

double cpu_ms(int who) {
    ::rusage u{};
    ::getrusage(who, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3;
}

double percentile(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

struct context {
    sock::event_loop* loop;
    ticker* tk;
    std::uint16_t port;
    std::size_t names;
    double idle_ms;
    int resolver_nice;
};

/// Sets the nice value of every thread of this process but the calling one: the resolver
/// threads that earlier runs left idle (threads started later keep the caller's).
void renice_other_threads(int nice) {
    const auto self = static_cast<id_t>(::gettid());
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
        const auto tid = static_cast<id_t>(std::stoul(entry.path().filename().string()));
        if (tid != self) ::setpriority(PRIO_PROCESS, tid, nice);
    }
}

sock::task<void> one_lookup(backend b, bench::ares_resolver* ares, std::size_t i, std::uint16_t port,
                            clock_type::time_point t0, lookup_slot& slot) {
    const std::string host = host_name(i);
    std::vector<sock::addrinfo> got;
    slot.started_ms = ms(clock_type::now() - t0);
    try {
        switch (b) {
        case backend::blocking:
            got = sock::getaddrinfo(host, port);
            break;
        case backend::ares:
            got = co_await ares->resolve(host, port);
            break;
        case backend::pool:
            got = co_await sock::async_getaddrinfo(host, port);
            break;
        case backend::idle:
            break;
        }
    } catch (const std::exception& e) {
        slot.failure = host + ": " + e.what();
    }
    slot.latency_ms = ms(clock_type::now() - t0);
    if (!slot.failure.empty()) co_return;
    std::vector<std::string> answer;
    for (const auto& ai : got) answer.push_back(ai.addr.to_string());
    std::sort(answer.begin(), answer.end());
    const auto want = expected_answer(i, port);
    if (answer != want) {
        std::string a, w;
        for (const auto& s : answer) a += (a.empty() ? "" : " ") + s;
        for (const auto& s : want) w += (w.empty() ? "" : " ") + s;
        slot.failure = host + ": got {" + a + "}, expected {" + w + "}";
    }
}

sock::task<void> measure(backend b, const context& cx, run_result& out) {
    std::unique_ptr<bench::ares_resolver> ares;
    if (b == backend::ares) ares = std::make_unique<bench::ares_resolver>(*cx.loop);  // reads resolv.conf
    co_await sock::sleep(20ms);  // the ticker settles into its period
    if (b == backend::pool && cx.resolver_nice != 0) renice_other_threads(cx.resolver_nice);
    cx.tk->ticks.clear();
    cx.tk->recording = true;
    std::vector<lookup_slot> slots(b == backend::idle ? 0 : cx.names);
    const double loop_cpu0 = cpu_ms(RUSAGE_THREAD), cpu0 = cpu_ms(RUSAGE_SELF);
    const auto t0 = clock_type::now();
    if (b == backend::idle) {
        co_await sock::sleep(std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::duration<double, std::milli>(cx.idle_ms)));
    } else {
        std::vector<sock::task<void>> lookups;
        lookups.reserve(cx.names);
        for (std::size_t i = 0; i < cx.names; ++i)
            lookups.push_back(one_lookup(b, ares.get(), i, cx.port, t0, slots[i]));
        co_await sock::when_all(std::move(lookups));
    }
    const auto t_end = clock_type::now();
    out.loop_cpu_ms = cpu_ms(RUSAGE_THREAD) - loop_cpu0;
    out.cpu_ms = cpu_ms(RUSAGE_SELF) - cpu0;
    // A tick that fell due during a stall fires only after it: give it the time to.
    co_await sock::sleep(3 * cx.tk->period);
    cx.tk->recording = false;

    out.which = b;
    out.lookups = slots.size();
    out.total_ms = ms(t_end - t0);
    std::vector<double> latency;
    for (const auto& s : slots) {
        latency.push_back(s.latency_ms);
        out.issue_ms = std::max(out.issue_ms, s.started_ms);
        if (!s.failure.empty() && out.failed++ == 0) out.first_failure = s.failure;
    }
    out.latency_p50 = percentile(latency, 0.50);
    out.latency_p99 = percentile(latency, 0.99);
    out.latency_max = percentile(latency, 1.0);
    // The ticks that fell due while the look-ups ran (or were already late when they began).
    std::vector<double> late;
    for (const auto& t : cx.tk->ticks)
        if (t.fired >= t0 && t.deadline <= t_end) late.push_back(ms(t.fired - t.deadline));
    out.ticks = late.size();
    out.stall_p99 = percentile(late, 0.99);
    out.stall_max = percentile(late, 1.0);
}

// ---- reports ----

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto n = v.size();
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

run_result median_of(const std::vector<run_result>& runs) {
    run_result m;
    if (runs.empty()) return m;
    m.which = runs.front().which;
    m.lookups = runs.front().lookups;
    auto pick = [&](double run_result::*field) {
        std::vector<double> v;
        for (const auto& r : runs) v.push_back(r.*field);
        return median(v);
    };
    m.total_ms = pick(&run_result::total_ms);
    m.latency_p50 = pick(&run_result::latency_p50);
    m.latency_p99 = pick(&run_result::latency_p99);
    m.latency_max = pick(&run_result::latency_max);
    m.stall_max = pick(&run_result::stall_max);
    m.stall_p99 = pick(&run_result::stall_p99);
    m.issue_ms = pick(&run_result::issue_ms);
    m.loop_cpu_ms = pick(&run_result::loop_cpu_ms);
    m.cpu_ms = pick(&run_result::cpu_ms);
    std::vector<double> ticks;
    for (const auto& r : runs) {
        ticks.push_back(static_cast<double>(r.ticks));
        m.failed += r.failed;
    }
    m.ticks = static_cast<std::size_t>(median(ticks));
    return m;
}

std::string fmt(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, v < 10 ? "%.3f" : v < 100 ? "%.2f" : "%.1f", v);
    return buf;
}

std::string table_row(const std::string& label, const run_result& r) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "%-11s %9s %9s %9s %9s %9s %9s %9s %9s %9s %6zu %6zu\n",
                  label.c_str(), fmt(r.stall_max).c_str(), fmt(r.stall_p99).c_str(),
                  fmt(r.latency_p50).c_str(), fmt(r.latency_p99).c_str(),
                  fmt(r.latency_max).c_str(), fmt(r.total_ms).c_str(), fmt(r.issue_ms).c_str(),
                  fmt(r.loop_cpu_ms).c_str(), fmt(r.cpu_ms).c_str(), r.ticks, r.failed);
    return buf;
}

const char* table_head =
    "                stall     stall   latency   latency   latency     total    issued  loop CPU  all CPU\n"
    "backend           max       p99       p50       p99       max                                      ticks failed\n";

std::string json_run(const run_result& r) {
    std::ostringstream o;
    o << "{\"lookups\": " << r.lookups << ", \"failed\": " << r.failed
      << ", \"stall_max_ms\": " << r.stall_max << ", \"stall_p99_ms\": " << r.stall_p99
      << ", \"latency_p50_ms\": " << r.latency_p50 << ", \"latency_p99_ms\": " << r.latency_p99
      << ", \"latency_max_ms\": " << r.latency_max << ", \"total_ms\": " << r.total_ms
      << ", \"issue_ms\": " << r.issue_ms << ", \"loop_cpu_ms\": " << r.loop_cpu_ms
      << ", \"cpu_ms\": " << r.cpu_ms << ", \"ticks\": " << r.ticks << "}";
    return o.str();
}

struct options {
    std::size_t names = 1000;
    std::size_t runs = 5;
    std::vector<std::string> backends;
    double period_ms = 1;
    double idle_ms = 100;
    std::uint16_t port = 8001;
    std::size_t pool_threads = 0;
    int resolver_nice = 0;
    bool json = false;
};

/// Everything after the private /etc/hosts is in place; returns the exit code.
int measure_all(const options& o) {
    if (o.pool_threads != 0) sock::set_resolver_threads(o.pool_threads);
    std::vector<backend> order;
    for (const auto& s : o.backends) {
        for (backend b : {backend::idle, backend::blocking, backend::ares, backend::pool})
            if (s == backend_name(b)) order.push_back(b);
    }
    sock::event_loop loop;
    ticker tk(loop, std::chrono::duration_cast<clock_type::duration>(
                        std::chrono::duration<double, std::milli>(o.period_ms)));
    tk.arm(clock_type::now());
    const context cx{&loop, &tk, o.port, o.names, o.idle_ms, o.resolver_nice};

    std::vector<std::vector<run_result>> results(order.size());
    std::string per_run;
    for (std::size_t run = 0; run < o.runs; ++run) {
        for (std::size_t k = 0; k < order.size(); ++k) {  // interleaved: run 1 of each, run 2...
            run_result r;
            sock::run(loop, measure(order[k], cx, r));
            results[k].push_back(r);
            per_run += table_row(std::string(backend_name(order[k])) + " #" + std::to_string(run + 1), r);
        }
    }

    std::size_t failed = 0;
    std::string failures;
    for (std::size_t k = 0; k < order.size(); ++k) {
        for (const auto& r : results[k]) {
            if (r.failed == 0) continue;
            failed += r.failed;
            failures += name + ": " + backend_name(order[k]) + ": " + std::to_string(r.failed) +
                        " of " + std::to_string(r.lookups) + " look-ups failed, first: " +
                        r.first_failure + "\n";
        }
    }

    std::string text;
    if (o.json) {
        std::ostringstream j;
        j << "{\"names\": " << o.names << ", \"runs\": " << o.runs << ", \"period_ms\": " << o.period_ms
          << ", \"c_ares\": \"" << ares_version(nullptr) << "\", \"pool_threads\": " << o.pool_threads
      << ", \"resolver_nice\": " << o.resolver_nice
          << ", \"backends\": {";
        for (std::size_t k = 0; k < order.size(); ++k) {
            j << (k ? ", " : "") << '"' << backend_name(order[k]) << "\": {\"median\": "
              << json_run(median_of(results[k])) << ", \"runs\": [";
            for (std::size_t i = 0; i < results[k].size(); ++i)
                j << (i ? ", " : "") << json_run(results[k][i]);
            j << "]}";
        }
        j << "}, \"failed\": " << failed << "}\n";
        text = j.str();
    } else {
        text = std::to_string(o.names) + " concurrent look-ups of distinct names from a private "
               "/etc/hosts on one event loop; ticker every " + fmt(o.period_ms) + " ms; c-ares " +
               ares_version(nullptr) + "; times in ms\n\n" + "each run\n" + table_head + per_run +
               "\nmedian of " + std::to_string(o.runs) + " run(s)\n" + table_head;
        for (std::size_t k = 0; k < order.size(); ++k)
            text += table_row(backend_name(order[k]), median_of(results[k]));
    }
    if (!greet::cli::write_stdout(text)) return greet::cli::failure;
    if (failed != 0) {
        std::fputs(failures.c_str(), stderr);
        return greet::cli::failure;
    }
    return greet::cli::ok;
}

/// Runs measure_all in a child that sees a hosts file of o.names names as /etc/hosts.
int with_private_hosts(const options& o) {
    char path[] = "/tmp/resolve-stall-hosts.XXXXXX";
    const int fd = ::mkstemp(path);
    if (fd < 0) {
        greet::cli::report(name, "cannot create a temporary hosts file");
        return greet::cli::failure;
    }
    ::close(fd);
    {
        std::ofstream(path) << hosts_file(o.names);
    }
    std::fflush(stdout);
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::unlink(path);
        greet::cli::report(name, "fork failed");
        return greet::cli::failure;
    }
    if (pid == 0) {
        if (::unshare(CLONE_NEWNS) != 0 ||
            ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            ::mount(path, "/etc/hosts", nullptr, MS_BIND, nullptr) != 0) {
            greet::cli::report(name, "cannot put a private /etc/hosts in place (needs root and "
                                     "mount namespaces)");
            ::_exit(unsupported);
        }
        int rc = greet::cli::failure;
        try {
            rc = measure_all(o);
        } catch (const std::exception& e) {
            greet::cli::report(name, e.what());
        }
        std::fflush(stdout);
        ::_exit(rc);
    }
    int status = 0;
    const bool waited = ::waitpid(pid, &status, 0) == pid;
    ::unlink(path);
    if (!waited || !WIFEXITED(status)) {
        greet::cli::report(name, "the measuring process died");
        return greet::cli::failure;
    }
    return WEXITSTATUS(status);
}

}  // namespace

int main(int argc, char** argv) {
    greet::cli::ignore_sigpipe();
    CLI::App app{"Starts --names look-ups at once on one event loop, of distinct names from a "
                 "private /etc/hosts (root only: a mount namespace), with each backend in turn "
                 "(blocking: sock::getaddrinfo on the loop's thread; ares: c-ares driven by the "
                 "loop; pool: sock::async_getaddrinfo's resolver threads; idle: no look-ups), "
                 "while a periodic timer on the loop measures how long the loop could not run "
                 "(stall: how late its ticks fire). Reports stall max and p99, each look-up's "
                 "latency from the start of the batch (p50, p99, max), and the time until all "
                 "were answered, per run and as medians. Every answer is checked against the "
                 "hosts file; a wrong answer or an error exits 1. Exits 77 when no private "
                 "/etc/hosts can be had.",
                 name};
    greet::cli::add_conventions(app, name);
    options o;
    o.backends = {"idle", "blocking", "ares", "pool"};
    const std::vector<std::string> known = o.backends;
    app.add_option("--names", o.names, "Names in the hosts file, one look-up each, all at once")
        ->capture_default_str()
        ->check(greet::cli::whole_number(1, 60000));
    app.add_option("--runs", o.runs, "Runs of each backend (interleaved); medians are reported")
        ->capture_default_str()
        ->check(greet::cli::whole_number(1, 1000));
    app.add_option("--backends", o.backends, "Backends to measure, in this order")
        ->capture_default_str()
        ->delimiter(',')
        ->check(CLI::IsMember(known));
    app.add_option("--period", o.period_ms, "The ticker's period in milliseconds")
        ->capture_default_str()
        ->check(greet::cli::number(0.05, 1000, "milliseconds"));
    app.add_option("--idle", o.idle_ms, "How long the idle backend watches an idle loop, in ms")
        ->capture_default_str()
        ->check(greet::cli::number(1, 60000, "milliseconds"));
    app.add_option("--port", o.port, "The port asked for with each name")
        ->capture_default_str()
        ->check(greet::cli::port_number(1));
    app.add_option("--pool-threads", o.pool_threads,
                   "pool: sock::set_resolver_threads(N) first; 0 keeps the library's default")
        ->capture_default_str()
        ->check(greet::cli::whole_number(0, 1024));
    app.add_option("--resolver-nice", o.resolver_nice,
                   "pool, an experiment: before each run, set this nice value on every thread but "
                   "the loop's (the resolver threads earlier runs left; new ones keep the loop's)")
        ->capture_default_str()
        ->check(CLI::Range(-20, 19));
    app.add_flag("--json", o.json, "Print one JSON object instead of the tables");
    if (auto rc = greet::cli::parse(app, argc, argv)) return *rc;
    return with_private_hosts(o);
}
