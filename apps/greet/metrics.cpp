#include "greet/metrics.hpp"

#include <sock/server.hpp>

#include <cstdint>

namespace greet {

loop_counts& metrics::here() noexcept { return loops_[sock::server::current_loop()]; }

void metrics::write(sock::metrics_text& out) const {
    sock::histogram_snapshot latency;
    auto total = [this](sock::loop_counter loop_counts::*field) {
        std::uint64_t n = 0;
        for (std::size_t i = 0; i < loops_.size(); ++i) n += (loops_[i].*field).value();
        return n;
    };
    for (std::size_t i = 0; i < loops_.size(); ++i) loops_[i].latency.add_to(latency);
    out.family("greet_replies_total", sock::metric_type::counter,
               "Replies sent, by kind: welcome (the client sent \"1\") or go_out (anything else).");
    out.sample(total(&loop_counts::welcome), {{"kind", "welcome"}});
    out.sample(total(&loop_counts::go_out), {{"kind", "go_out"}});
    out.family("greet_timeouts_total", sock::metric_type::counter,
               "Clients that said nothing within --timeout, closed without a reply.");
    out.sample(total(&loop_counts::timeouts));
    out.family("greet_errors_total", sock::metric_type::counter,
               "Clients lost to a failed call, by call.");
    out.sample(total(&loop_counts::recv_errors), {{"call", "recv"}});
    out.sample(total(&loop_counts::sendall_errors), {{"call", "sendall"}});
    out.sample(total(&loop_counts::recvfrom_errors), {{"call", "recvfrom"}});
    out.sample(total(&loop_counts::sendto_errors), {{"call", "sendto"}});
    out.family("greet_greeting_duration_seconds", sock::metric_type::histogram,
               "Time from the loop's wakeup that accepted a connection to its reply sent.");
    out.histogram(latency);
    if (tls_)
        tls::write_metrics(out, loops_.size(), [this](std::size_t i) -> const tls::handshake_counts& {
            return loops_[i].tls;
        });
}

}  // namespace greet
