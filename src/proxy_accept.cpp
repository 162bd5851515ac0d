#include "proxy_accept.hpp"

#include <sock/error.hpp>
#include <sock/proxy_protocol.hpp>

#include <array>
#include <span>

namespace sock::detail {

namespace {

using clock = std::chrono::steady_clock;

}  // namespace

task<std::string> take_proxy_header(async_socket& conn, std::chrono::nanoseconds timeout) {
    const auto saved = conn.gettimeout();
    struct restore {
        async_socket& conn;
        timeout_t saved;
        ~restore() { conn.settimeout(saved); }
    } restored{conn, saved};
    // Every look copies the queue afresh from the kernel and is parsed before the next
    // suspension, so one buffer serves every connection of this thread, and frames stay small.
    static thread_local std::array<char, proxy_v2_max> buf;
    const auto deadline = clock::now() + timeout;
    std::size_t seen = 0;
    std::error_code ec;
    for (;;) {
        const auto left = deadline - clock::now();
        if (left <= clock::duration::zero()) co_return "timed out";
        conn.settimeout(std::chrono::duration_cast<std::chrono::nanoseconds>(left));
        const std::size_t n = co_await conn.peek_into(buf, seen, ec);
        if (ec == std::errc::timed_out) co_return "timed out";
        if (ec) co_return "recv: " + error_reason(ec);
        if (n == 0) co_return "closed before sending a header";
        const auto r = parse_proxy_header(std::string_view(buf.data(), n));
        if (r.status == proxy_status::invalid) co_return std::string(r.reason);
        if (r.status == proxy_status::need_more) {
            // The peek reports no more than before only once the peer has shut down.
            if (n == seen) co_return "closed in the middle of the header";
            seen = n;
            continue;
        }
        const auto& h = r.header;
        if (h.command == proxy_command::proxy && h.family != sock::family::unspec)
            conn.set_proxied(h.source, h.destination);
        // The header's bytes are queued (just peeked): these reads never wait.
        for (std::size_t taken = 0; taken < h.length;) {
            const std::size_t got =
                co_await conn.recv_into(std::span<char>(buf.data(), h.length - taken), ec);
            if (ec) co_return "recv: " + error_reason(ec);
            if (got == 0) co_return "closed in the middle of the header";
            taken += got;
        }
        co_return "";
    }
}

}  // namespace sock::detail
