#include "greet/server.hpp"

#include "greet/cli.hpp"
#include "greet/descriptor_limit.hpp"
#include "greet/greeting.hpp"
#include "greet/host.hpp"
#include "greet/metrics.hpp"
#include "greet/unix_socket.hpp"

#include <sock/async_ssl.hpp>
#include <sock/error.hpp>
#include <sock/metrics_endpoint.hpp>
#include <sock/server.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace greet {

namespace {

using namespace std::chrono_literals;

/// Bounds of the whole drain before close when the client sent more than was read: one
/// deadline and one byte count for all of it, so a client dripping a byte now and then
/// cannot keep its connection.
constexpr auto drain_time = 1s;
constexpr std::size_t drain_limit = 64 * 1024 * 1024;

using cli::write_line;

// The client: behind a front door, the one its PROXY header named.
std::string peer_name(const sock::async_socket& conn) {
    std::error_code ec;
    const auto peer = conn.getpeername(ec);
    if (ec || peer.empty() || (peer.is_unix() && peer.path().empty()))
        return conn.raw().family() == sock::family::local ? "unix client" : "client";
    return peer.to_string();
}

/// The message as a log shows it: short printable ones quoted, others by size.
std::string summary(std::string_view message) {
    bool printable = message.size() <= 32;
    for (char c : message) printable = printable && c >= ' ' && c <= '~';
    if (printable) return '"' + std::string(message) + '"';
    return std::to_string(message.size()) + " bytes";
}

/// The end of a connection after the reply. Closing with unread input makes the kernel send
/// RST instead of FIN, and an RST that overtakes the reply destroys it in the client's
/// receive queue; a client may send more than its message at any moment. So the FIN goes
/// first (shutdown): whatever the close sends later comes after the whole reply and its end,
/// where the client's kernel no longer discards anything. Then, only if input is waiting
/// (one non-blocking recv; the usual answer is EAGAIN), swallow what the client still sends
/// until it closes, within one deadline and one byte count for the whole drain.
sock::task<> finish(sock::async_socket& conn, bool input_waiting) {
    std::error_code ec;
    conn.shutdown(sock::shut::wr, ec);
    if (ec) co_return;
    static thread_local std::array<char, 64 * 1024> buf;  // discarded bytes: any buffer will do
    std::size_t drained = 0;
    if (!input_waiting) {
        const std::size_t n = conn.raw().recv_into(buf, MSG_DONTWAIT, ec);
        if (ec || n == 0) co_return;  // nothing waiting (EAGAIN), or the client is done
        drained = n;
    }
    const auto deadline = std::chrono::steady_clock::now() + drain_time;
    while (drained < drain_limit) {
        const auto left = deadline - std::chrono::steady_clock::now();
        if (left <= decltype(left)::zero()) break;
        conn.settimeout(std::chrono::duration_cast<std::chrono::nanoseconds>(left));
        const std::size_t n = co_await conn.recv_into(buf, ec);
        if (ec || n == 0) break;
        drained += n;
    }
}

/// A reply's kind, or the failure of the call that sent it.
void count_reply(loop_counts& counts, std::string_view reply, std::error_code ec,
                 sock::loop_counter loop_counts::*failed) noexcept {
    if (ec) (counts.*failed).add();
    else if (reply == welcome) counts.welcome.add();
    else counts.go_out.add();
}

sock::task<> serve_datagrams(sock::async_socket s, const server_config& config, loop_counts* counts) {
    std::array<char, max_message> buf;
    for (;;) {
        std::error_code ec;
        auto [n, sender] = co_await s.recvfrom_into(buf, ec);
        if (ec == std::errc::operation_canceled) co_return;  // the server is stopping
        if (ec) {
            if (counts) counts->recvfrom_errors.add();
            write_line(2, "udp client: recvfrom: " + sock::error_reason(ec));
            continue;
        }
        const std::string_view message(buf.data(), n);
        const auto reply = reply_to(message);
        co_await s.sendto(reply, sender, ec);
        if (ec == std::errc::operation_canceled) co_return;
        if (counts) count_reply(*counts, reply, ec, &loop_counts::sendto_errors);
        if (ec) write_line(2, sender.to_string() + ": sendto: " + sock::error_reason(ec));
        else if (!config.quiet)
            write_line(1, sender.to_string() + ": " + summary(message) + " -> " + std::string(reply));
    }
}

}  // namespace

namespace {

/// The plain connection under a stream: itself, or what TLS runs over.
sock::async_socket& plain(sock::async_socket& conn) noexcept { return conn; }
sock::async_socket& plain(sock::ssl::async_socket& conn) noexcept { return conn.raw(); }

/// The reply. Over TLS close_notify follows at once (finish): MSG_MORE holds the reply's
/// record for it, so both go in one send and one segment.
auto send_reply(sock::async_socket& conn, std::string_view reply, std::error_code& ec) {
    return conn.sendall(reply, ec);
}
auto send_reply(sock::ssl::async_socket& conn, std::string_view reply, std::error_code& ec) {
    return conn.sendall(reply, MSG_MORE, ec);
}

/// TLS's end after the reply: close_notify (sent within drain_time), and the client's if it
/// is already there; the server context's zero shutdown timeout waits for nothing more.
sock::task<> finish(sock::ssl::async_socket& conn, bool) {
    conn.settimeout(drain_time);
    co_await conn.aclose();
}

/// The greeting over a connected stream, plain or TLS: `timeout` is what is left of the
/// client's time (TLS: the handshake took the rest), `accepted` the loop's time of its accept.
template <class Stream>
sock::task<> serve_stream(Stream conn, const server_config& config, loop_counts* counts,
                          std::chrono::steady_clock::time_point accepted,
                          std::chrono::nanoseconds timeout) {
    conn.settimeout(timeout);
    sock::async_socket& under = plain(conn);
    // The read completes only once data is there, so the bytes can land in a buffer shared
    // by every connection of this thread: frames stay small (10,000 idle clients cost a
    // tenth of what 1 KiB each would) and the buffer stays in cache. The message is used
    // before the next suspension only. One byte more than a message: if it fills, the
    // client sent more than is read, and the close must not reset the connection (see
    // finish, which also catches what arrives later).
    static thread_local std::array<char, max_message + 1> buf;
    std::error_code ec;
    const std::size_t n = co_await conn.recv_into(buf, ec);
    // Behind a front door, a connection of its own (a LOCAL header) that ends without a
    // message is a health check (HAProxy's connect, header, reset): nothing to log or answer.
    if (config.proxy_protocol && !under.proxied() &&
        ((!ec && n == 0) || ec == std::errc::connection_reset))
        co_return;
    if (ec) {
        const bool timed_out = ec == std::errc::timed_out;
        if (counts) (timed_out ? counts->timeouts : counts->recv_errors).add();
        write_line(2, peer_name(under) + ": " + (timed_out ? "time out" : "recv: " + sock::error_reason(ec)));
        co_return;
    }
    const std::string_view message(buf.data(), std::min(n, max_message));
    const auto reply = reply_to(message);
    std::string served;  // built now: buf may be reused once sendall waits
    if (!config.quiet) served = summary(message) + " -> " + std::string(reply);
    co_await send_reply(conn, reply, ec);
    if (counts) {
        count_reply(*counts, reply, ec, &loop_counts::sendall_errors);
        if (!ec) counts->latency.observe(std::chrono::steady_clock::now() - accepted);
    }
    if (ec) {
        write_line(2, peer_name(under) + ": sendall: " + sock::error_reason(ec));
        co_return;
    }
    if (!config.quiet) write_line(1, peer_name(under) + ": " + served);
    co_await finish(conn, n > max_message);
}

}  // namespace

sock::task<> serve_connection(sock::async_socket conn, const server_config& config,
                              loop_counts* counts) {
    // The loop's time of the wakeup that accepted this connection: no clock read here.
    const auto accepted = conn.loop()->now();
    return serve_stream(std::move(conn), config, counts, accepted, config.timeout);
}

sock::task<> serve_tls_connection(sock::async_socket conn, const sock::ssl::context& ctx,
                                  const server_config& config, loop_counts* counts) {
    const auto accepted = conn.loop()->now();
    conn.settimeout(config.timeout);  // bounds the handshake; the message gets what is left
    static const sock::ssl::wrap_options server_side{.server_side = true, .do_handshake_on_connect = false};
    auto tls = co_await sock::ssl::async_wrap_socket(ctx, std::move(conn), server_side);
    std::error_code ec;
    std::string words;  // the failure's, made only when one happens
    try {
        co_await tls.do_handshake();
    } catch (const sock::error& e) {
        ec = e.code();
        words = e.what();
    }
    if (ec) {
        if (ec == std::errc::operation_canceled) co_return;  // the server is stopping
        sock::async_socket& under = tls.raw();
        // A front door's health check (a LOCAL header, then the end) is no failed client.
        if (config.proxy_protocol && !under.proxied() && tls::classify(ec, words) == tls::failure::eof)
            co_return;
        const auto why = tls::classify(ec, words);
        if (counts) counts->tls.failed[static_cast<std::size_t>(why)].add();
        write_line(2, peer_name(under) + ": handshake: " + std::string(tls::reason_words(words)));
        co_return;
    }
    if (counts) {
        counts->tls.completed.add();
        if (tls.session_reused()) counts->tls.resumed.add();
    }
    const auto left = config.timeout - (std::chrono::steady_clock::now() - accepted);
    // Nothing left: a message already there is still read, else the recv times out at once.
    co_await serve_stream(std::move(tls), config, counts, accepted,
                          std::max(std::chrono::duration_cast<std::chrono::nanoseconds>(left),
                                   std::chrono::nanoseconds(1)));
}

void run_server(const server_config& config, std::vector<sock::socket> inherited) {
    sock::server_config engine;
    engine.threads = config.threads;
    engine.backlog = config.backlog;
    engine.type = config.udp ? sock::kind::dgram : sock::kind::stream;
    engine.max_connections = config.max_connections != 0
                                 ? config.max_connections
                                 : connection_budget(raise_descriptor_limit());
    std::optional<unix_socket_file> file;
    const bool activated = !inherited.empty();
    if (activated) {
        engine.inherited = std::move(inherited);
    } else if (!config.unix_path.empty()) {
        remove_stale_unix_socket(config.unix_path);
        engine.listen.push_back(sock::address::unix_path(config.unix_path));
    } else {
        engine.listen.push_back(listen_address(config.host, config.port, engine.type));
    }
    // The handlers keep a reference to config, which outlives the server and its connections,
    // and to counted, set (with --metrics) before the server runs.
    std::optional<metrics> counted;
    auto counts = [&counted]() -> loop_counts* { return counted ? &counted->here() : nullptr; };
    // With TLS: the context, built once here (a bad file ends the program before it listens)
    // and again on SIGHUP; each loop wraps with its own copy of the current one.
    std::optional<tls::server_context> tls_context;
    if (config.tls.enabled()) tls_context.emplace(config.tls);
    sock::connection_handler handler;
    if (config.udp)
        handler = [&config, counts](sock::async_socket s) { return serve_datagrams(std::move(s), config, counts()); };
    else if (tls_context)
        handler = [&config, counts, &tls_context](sock::async_socket s) {
            return serve_tls_connection(std::move(s), tls_context->current(sock::server::current_loop()),
                                        config, counts());
        };
    else
        handler = [&config, counts](sock::async_socket s) { return serve_connection(std::move(s), config, counts()); };
    if (tls_context)
        engine.on_hangup = [&tls_context] { write_line(2, "SIGHUP: " + tls_context->reload()); };
    engine.reuse_port = config.reuse_port;
    // TLS may send small records apart (where the kernel has a tls module: the flight, the
    // tickets, then the reply and close_notify). With Nagle one sent while another is
    // unacknowledged waits for the client's delayed ACK: 40 ms stalls, seen in W6. Set on
    // the listener, it costs no call per connection; the plaintext greeting sends once.
    engine.tcp_nodelay = config.tls.enabled();
    engine.stop_delay = config.stop_delay;
    engine.proxy_protocol = config.proxy_protocol;
    engine.proxy_from = config.proxy_from;
    engine.proxy_timeout = config.timeout;  // the header is the first thing a client must send
    // Behind a front door, a stop must not reset connections the front door already counts as
    // made: it cannot send those to another instance. With TCP_DEFER_ACCEPT a connection
    // waits outside the accept queue until its first bytes come, so a listener that closes
    // at once would miss the ones whose header is still on its way (measured: a few failed
    // greetings per drain through HAProxy). The engine turns it off as the stop begins, so
    // with a --stop-delay nothing is held back by the time the listener closes; without
    // one, it stays off.
    engine.defer_accept = !config.proxy_protocol || config.stop_delay > std::chrono::nanoseconds::zero();
    engine.log = [](std::string_view line) { write_line(2, std::string(line)); };
    sock::server server(std::move(engine), std::move(handler));
    if (tls_context) tls_context->set_loops(server.loops());
    if (!activated && !config.unix_path.empty()) file.emplace(config.unix_path);
    // On the server's first loop, so that one loop is one thread (see metrics_endpoint): up
    // when the server runs, and /healthz says 503 all through the graceful stop, while the
    // listener above is already closed, until that loop's clients are done.
    std::optional<sock::metrics_endpoint> endpoint;
    if (!config.metrics.empty()) {
        counted.emplace(server.loops(), config.tls.enabled());
        const auto [host, port] = split_host_port(config.metrics);
        sock::metrics_endpoint_config m;
        m.listen = listen_address(host, port, sock::kind::stream);
        m.routes.metrics = [&server, &counted] {
            sock::metrics_text out;
            server.write_metrics(out);
            counted->write(out);
            return out.str();
        };
        m.routes.healthy = [&server] { return !server.stopping(); };
        m.log = [](std::string_view line) { write_line(2, std::string(line)); };
        endpoint.emplace(std::move(m), server);
    }
    for (const auto& where : server.addresses()) write_line(1, "listening on " + where.to_string());
    if (endpoint) write_line(1, "metrics on http://" + endpoint->address().to_string() + "/metrics");
    server.run();
}

}  // namespace greet
