#pragma once

// TLS for the programs (greet-server, echo-server, greet-client, greet-bench): the server's
// context built once from its files and swapped whole on reload, handshake failures sorted
// into a few reasons, and their per-loop counts.

#include <sock/metrics.hpp>
#include <sock/ssl.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace greet::tls {

/// A server's certificate files; empty cert: no TLS.
struct server_files {
    std::string cert;
    std::string key;
    /// Non-empty: clients must show a certificate signed by a CA in this file.
    std::string client_ca;
    bool enabled() const noexcept { return !cert.empty(); }
};

/// A tls_server context with the files loaded (client_ca: clients must show a certificate).
/// Throws sock::ssl::error naming the file and why ("load_cert_chain key.pem: key does not
/// match certificate"), or sock::error for a file it cannot read.
sock::ssl::context make_server_context(const server_files& files);

/// The certificate of a PEM file in one line: "CN=localhost (serial 1A2B..., not after
/// Nov 30 10:00:00 2036 GMT)"; what it can, if the file cannot be read.
std::string describe_certificate(const std::string& file);

/// The server context every loop wraps with. reload() builds a new one from the same files
/// and swaps it in for new connections: connections already wrapped keep the one they were
/// wrapped with (a context is a shared handle). Each loop keeps its own copy and looks at one
/// atomic counter per connection to see whether it is still current: no lock, no shared
/// reference count on the per-connection path.
class server_context {
public:
    /// Loads the files (throws as make_server_context).
    explicit server_context(server_files files);
    /// Makes room for each loop's copy: call once the server's loop count is known, before
    /// the first current().
    void set_loops(std::size_t loops);
    /// The current context, for loop number `loop` (sock::server::current_loop()).
    const sock::ssl::context& current(std::size_t loop);
    /// Loads the files again and swaps the result in; on failure keeps the current one.
    /// Returns the line to log: "reloaded certificate CN=... (serial ..., not after ...)" or
    /// "reload failed: load_cert_chain key.pem: ...; keeping the current certificate".
    std::string reload();
    const server_files& files() const noexcept { return files_; }

private:
    struct alignas(64) cached {
        std::uint64_t generation = 0;
        std::optional<sock::ssl::context> ctx;
    };
    server_files files_;
    std::mutex mutex_;  // guards latest_ (reload, and a loop catching up)
    sock::ssl::context latest_;
    std::atomic<std::uint64_t> generation_{1};
    std::unique_ptr<cached[]> loops_;
};

/// Why a handshake failed, as the metrics label it.
enum class failure : unsigned char { timeout, eof, protocol, certificate, alert, other };
inline constexpr std::size_t failure_count = 6;
inline constexpr std::array<std::string_view, failure_count> failure_names = {
    "timeout", "eof", "protocol", "certificate", "alert", "other"};

/// The reason of a failed handshake: its error code, and the words of the failure (a missing
/// client certificate is a protocol error to OpenSSL and a certificate failure here).
failure classify(std::error_code ec, std::string_view words) noexcept;

/// One loop's handshake counts; only that loop's thread writes them.
struct handshake_counts {
    sock::loop_counter completed;  ///< handshakes done, resumed ones included
    sock::loop_counter resumed;    ///< of those, resumed sessions
    std::array<sock::loop_counter, failure_count> failed;  ///< by failure
};

/// Appends sock_tls_handshakes_total, sock_tls_resumed_total and
/// sock_tls_handshake_failures_total{reason}; get(i) is loop i's counts.
template <class Get>
void write_metrics(sock::metrics_text& out, std::size_t loops, Get get) {
    auto sum = [&](auto pick) {
        std::uint64_t n = 0;
        for (std::size_t i = 0; i < loops; ++i) n += pick(get(i)).value();
        return n;
    };
    out.family("sock_tls_handshakes_total", sock::metric_type::counter,
               "TLS handshakes completed, resumed sessions included.");
    out.sample(sum([](const handshake_counts& c) -> const sock::loop_counter& { return c.completed; }));
    out.family("sock_tls_resumed_total", sock::metric_type::counter,
               "TLS handshakes that resumed a session (a ticket) instead of a full handshake.");
    out.sample(sum([](const handshake_counts& c) -> const sock::loop_counter& { return c.resumed; }));
    out.family("sock_tls_handshake_failures_total", sock::metric_type::counter,
               "TLS handshakes that failed, by reason: timeout (not done within --timeout), eof "
               "(the client left), protocol (not TLS, or broken), certificate (the client's "
               "did not verify or was missing), alert (the client refused), other.");
    for (std::size_t r = 0; r < failure_count; ++r)
        out.sample(sum([r](const handshake_counts& c) -> const sock::loop_counter& { return c.failed[r]; }),
                   {{"reason", failure_names[r]}});
}

/// The words of a failed TLS call's exception without its "handshake ADDRESS: " part.
std::string_view reason_words(std::string_view what) noexcept;

}  // namespace greet::tls
