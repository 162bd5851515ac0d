// The server's counters as Prometheus families: apart from server.cpp, which only counts.

#include <sock/metrics.hpp>
#include <sock/server.hpp>

namespace sock SOCK_API {

void server::write_metrics(metrics_text& out) const {
    const server_stats s = stats();
    out.family("sock_connections_accepted_total", metric_type::counter, "Connections accepted.");
    out.sample(s.accepted);
    out.family("sock_connections_active", metric_type::gauge, "Connections being served now.");
    out.sample(s.active);
    out.family("sock_accept_pauses_total", metric_type::counter,
               "Times accepting paused: at the connection limit, or out of descriptors (100 ms).");
    out.sample(s.paused_at_limit, {{"reason", "limit"}});
    out.sample(s.paused_for_descriptors, {{"reason", "descriptors"}});
    out.family("sock_errors_total", metric_type::counter,
               "Failures by call: accept, or a connection handler that could not start or threw.");
    out.sample(s.accept_errors, {{"call", "accept"}});
    out.sample(s.handler_errors, {{"call", "handler"}});
    out.family("sock_proxy_headers_rejected_total", metric_type::counter,
               "Connections closed for their PROXY header: untrusted peer, malformed, or too slow.");
    out.sample(s.proxy_rejected);
}

}  // namespace sock
