#include <sock/create.hpp>

#include "connect_attempt.hpp"
#include "wait.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <string>
#include <vector>

namespace sock SOCK_API {

namespace {

using detail::clock;
using detail::failure;
using detail::failure_context;
using detail::interleave;
using detail::open_attempt;

/// An attempt in flight and the address it is for.
struct attempt {
    socket s;
    const addrinfo* info;
};

/// Happy Eyeballs over the resolved addresses; on failure ec is the last cause and `failed`
/// lists every address, in the order their attempts ended.
socket race(const std::vector<addrinfo>& order, timeout_t timeout,
            const std::optional<address>& source, timeout_t delay,
            std::vector<failure>& failed, std::error_code& ec) {
    const auto started = clock::now();
    const detail::deadline_t deadline =
        timeout ? detail::deadline_t(started + *timeout) : std::nullopt;
    // Python's create_connection with timeout 0 is a non-blocking connect: it never waits.
    const bool never_wait = timeout && timeout->count() == 0;
    auto fail = [&](const addrinfo& info, std::string step, std::error_code cause) {
        std::string what = info.addr.to_string();
        if (!step.empty()) what += ": " + step;
        failed.push_back({std::move(what), cause});
        ec = cause;
    };
    auto won = [&](socket& s) -> socket {
        s.settimeout(timeout);
        ec.clear();
        return std::move(s);
    };

    std::vector<attempt> flying;
    std::vector<::pollfd> fds;
    std::size_t next = 0;
    auto next_start = started;
    for (;;) {
        // Start attempts: the first, the next after a failure, or any whose delay is up.
        while (next < order.size() &&
               (flying.empty() || (delay && clock::now() >= next_start))) {
            const addrinfo& info = order[next++];
            std::string step;
            auto s = open_attempt(info.family, info.proto, source, step, ec);
            if (ec) {
                fail(info, std::move(step), ec);
                continue;
            }
            ::sockaddr_storage ss{};
            ::socklen_t len = 0;
            info.addr.to_native(ss, len);  // getaddrinfo's addresses are numeric
            if (::connect(s.fileno(), reinterpret_cast<const ::sockaddr*>(&ss), len) == 0)
                return won(s);
            const int e = errno;
            // EINTR leaves the connection going on in the background, as EINPROGRESS does.
            if ((e != EINPROGRESS && e != EINTR) || never_wait) {
                fail(info, {}, {e, std::system_category()});
                continue;
            }
            flying.push_back({std::move(s), &info});
            next_start = clock::now() + (delay ? *delay : std::chrono::nanoseconds(0));
        }
        if (flying.empty()) return socket::invalid();  // every address failed

        // Sleep until an attempt ends, the next one is due, or the call's time is up.
        detail::deadline_t wake = deadline;
        if (next < order.size() && delay && (!wake || next_start < *wake)) wake = next_start;
        fds.clear();
        for (const auto& a : flying) fds.push_back({a.s.fileno(), POLLOUT, 0});
        if (auto poll_ec = detail::wait_any(fds, wake); poll_ec && poll_ec != timeout_error()) {
            for (const auto& a : flying) fail(*a.info, "poll", poll_ec);
            return socket::invalid();
        }

        std::vector<attempt> still;
        for (std::size_t i = 0; i < flying.size(); ++i) {
            if (fds[i].revents == 0) {
                still.push_back(std::move(flying[i]));
                continue;
            }
            int err = 0;
            ::socklen_t err_len = sizeof err;
            std::error_code opt_ec;
            flying[i].s.getsockopt(SOL_SOCKET, SO_ERROR, &err, err_len, opt_ec);
            // The losers still in flight close when `flying` and `still` go out of scope.
            if (!opt_ec && err == 0) return won(flying[i].s);
            if (!opt_ec) opt_ec = {err, std::system_category()};
            fail(*flying[i].info, {}, opt_ec);
            next_start = clock::now();  // a failure starts the next address at once
        }
        flying = std::move(still);

        if (deadline && clock::now() >= *deadline) {
            // The whole call's time is up: what is in flight and what never started failed alike.
            for (const auto& a : flying) fail(*a.info, {}, timeout_error());
            for (; next < order.size(); ++next) fail(order[next], {}, timeout_error());
            return socket::invalid();
        }
    }
}

/// The shared body of both forms; on failure `context` is what the error message says
/// before the cause.
socket connect_to(const address& addr, timeout_t timeout, const std::optional<address>& source,
                  timeout_t delay, std::string& context, std::error_code& ec) {
    if (timeout && timeout->count() < 0)
        throw std::invalid_argument("create_connection: timeout must be >= 0");
    if (delay && delay->count() < 0)
        throw std::invalid_argument("create_connection: happy_eyeballs_delay must be >= 0");
    if (addr.is_unix()) {
        std::string step;
        auto s = open_attempt(sock::family::local, 0, source, step, ec);
        if (!ec) {
            s.settimeout(timeout);
            s.connect(addr, ec);
        }
        if (!ec) return s;
        context = "connect " + addr.to_string() + (step.empty() ? "" : ": " + step);
        return socket::invalid();
    }
    auto infos = getaddrinfo(addr.host(), addr.port(), sock::family::unspec,
                             sock::kind::stream, 0, ec);
    if (ec) {
        context = "connect " + addr.to_string();
        return socket::invalid();
    }
    if (infos.empty()) {  // getaddrinfo promises at least one, but an empty race never ends
        ec = {EAI_NONAME, gai_category()};
        context = "connect " + addr.to_string();
        return socket::invalid();
    }
    const auto order = interleave(std::move(infos));
    std::vector<failure> failed;
    auto s = race(order, timeout, source, delay, failed, ec);
    if (ec) context = failure_context(addr, failed);
    return s;
}

}  // namespace

socket create_connection(const address& addr, timeout_t timeout,
                         const std::optional<address>& source, timeout_t happy_eyeballs_delay) {
    std::string context;
    std::error_code ec;
    auto s = connect_to(addr, timeout, source, happy_eyeballs_delay, context, ec);
    if (ec) throw_error(ec, context);
    return s;
}

socket create_connection(const address& addr, timeout_t timeout,
                         const std::optional<address>& source, timeout_t happy_eyeballs_delay,
                         std::error_code& ec) {
    std::string context;
    return connect_to(addr, timeout, source, happy_eyeballs_delay, context, ec);
}

socket create_server(const address& addr, const server_options& options) {
    if (options.dualstack_ipv6 && options.family != sock::family::inet6)
        throw std::invalid_argument("create_server: dualstack_ipv6 needs family inet6");
    auto fam = options.family;
    if (addr.is_unix()) {
        fam = sock::family::local;
    } else if (auto literal = addr.family(); literal != sock::family::unspec) {
        fam = literal;  // a numeric host decides its own family
    }
    socket s(fam, sock::kind::stream);
    if (fam != sock::family::local) {
        // Restart without waiting out TIME_WAIT of the previous run.
        s.setsockopt(opt::reuse_address, true);
    }
    if (options.reuse_port) s.setsockopt(opt::reuse_port, true);
    if (fam == sock::family::inet6 && has_dualstack_ipv6())
        s.setsockopt(opt::v6only, !options.dualstack_ipv6);
    s.bind(addr);
    s.listen(options.backlog);
    return s;
}

bool has_dualstack_ipv6() noexcept {
    try {
        socket s(sock::family::inet6, sock::kind::stream);
        s.setsockopt(opt::v6only, false);
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

std::pair<socket, socket> socketpair(sock::family fam, sock::kind type) {
    int fds[2];
    if (::socketpair(static_cast<int>(fam), static_cast<int>(type) | SOCK_CLOEXEC, 0, fds) < 0)
        throw_error({errno, std::system_category()}, "socketpair");
    auto a = socket::from_fd(fds[0]);
    auto b = socket::from_fd(fds[1]);
    if (auto t = getdefaulttimeout()) {
        a.settimeout(t);
        b.settimeout(t);
    }
    return {std::move(a), std::move(b)};
}

}  // namespace sock
