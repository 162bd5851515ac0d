#include <sock/create.hpp>

#include <sys/socket.h>

#include <stdexcept>
#include <string>

namespace sock SOCK_API {

socket create_connection(const address& addr, timeout_t timeout,
                         const std::optional<address>& source) {
    auto open = [&](sock::family fam, int proto) {
        socket s(fam, sock::kind::stream, proto);
        s.settimeout(timeout);
        if (source) s.bind(*source);
        return s;
    };
    if (addr.is_unix()) {
        auto s = open(sock::family::local, 0);
        s.connect(addr);
        return s;
    }
    std::error_code ec;
    const auto infos = getaddrinfo(addr.host(), addr.port(), sock::family::unspec,
                                   sock::kind::stream, 0, ec);
    if (ec) throw_error(ec, "connect " + addr.to_string());
    // Each failure is kept so that the final message says what every address answered.
    std::string tried;
    for (const auto& info : infos) {
        auto s = open(info.family, info.proto);
        s.connect(info.addr, ec);
        if (!ec) return s;
        if (!tried.empty()) tried += "; ";
        tried += info.addr.to_string();
        if (&info != &infos.back()) tried += ": " + error_reason(ec);
    }
    if (infos.size() == 1) throw_error(ec, "connect " + tried);
    throw_error(ec, "connect " + addr.to_string() + ": " + tried);
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
