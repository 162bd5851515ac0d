#pragma once

// An address that silently drops SYNs, on loopback: a listener whose queue is full. Linux then
// drops the SYNs it gets, so a connect to it hangs as to a host that is down, without any
// network. For Happy Eyeballs tests, with a name (from a private /etc/hosts) whose first
// address is silent and whose second listens.

#include <sock/sock.hpp>

#include <poll.h>

#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace test {

/// The addresses name resolves to, in getaddrinfo's order (hosts only, no port).
inline std::vector<std::string> resolved(const std::string& name) {
    std::vector<std::string> out;
    for (const auto& info : sock::getaddrinfo(name, 0)) out.push_back(info.addr.host());
    return out;
}

/// TCP sockets bound, not listening, to each host on one kernel-chosen port; IPv6 ones are
/// V6ONLY, so that the IPv4 ones can share the port. A port taken elsewhere is tried again.
inline std::vector<sock::socket> same_port(const std::vector<std::string>& hosts) {
    for (int attempt = 0;; ++attempt) {
        std::vector<sock::socket> out;
        std::uint16_t port = 0;
        std::error_code ec;
        for (const auto& host : hosts) {
            const bool v6 = host.find(':') != std::string::npos;
            sock::socket s(v6 ? sock::family::inet6 : sock::family::inet, sock::kind::stream);
            if (v6) s.setsockopt(sock::opt::v6only, true);
            s.bind(sock::address(host, port), ec);
            if (ec) break;
            port = s.getsockname().port();
            out.push_back(std::move(s));
        }
        if (!ec) return out;
        if (ec != std::errc::address_in_use || attempt == 50) throw sock::error(ec, "bind");
    }
}

/// Fills l's queue (listen(0), clients never accepted) until a further client's SYN goes
/// unanswered: returns the clients, the hanging one last, or nothing if none ever hung.
inline std::vector<sock::socket> fill_queue(sock::socket& l) {
    l.listen(0);
    const sock::address where = l.getsockname();
    std::vector<sock::socket> clients;
    for (int i = 0; i < 8; ++i) {
        sock::socket c(where.family(), sock::kind::stream);
        c.setblocking(false);
        const auto ec = c.connect_ex(where);
        if (ec && ec != std::errc::operation_in_progress) throw sock::error(ec, "connect");
        // Half a second is far more than a loopback handshake takes, even on a loaded host.
        ::pollfd p{c.fileno(), POLLOUT, 0};
        const bool answered = ::poll(&p, 1, 500) == 1;
        clients.push_back(std::move(c));
        if (!answered) return clients;
    }
    return {};
}

/// A name's first address (per getaddrinfo) silently drops SYNs; the second listens.
struct silent_first {
    std::string first, second;
    std::uint16_t port = 0;
    std::vector<sock::socket> bound;  // [0] the full queue, [1] the listener
    std::vector<sock::socket> queued;

    explicit silent_first(const std::string& name) {
        const auto hosts = resolved(name);
        if (hosts.size() != 2) throw std::runtime_error(name + ": expected two addresses");
        first = hosts[0];
        second = hosts[1];
        bound = same_port(hosts);
        port = bound[0].getsockname().port();
        queued = fill_queue(bound[0]);
        if (queued.empty()) throw std::runtime_error("a full listen queue did not drop SYNs");
        bound[1].listen(8);
    }
    sock::socket& listener() { return bound[1]; }
};

}  // namespace test
