#pragma once

// What the blocking and the async create_connection share: the order of a name's addresses,
// the socket of one attempt, and the error that lists every address. Inline, so that each
// library has its own copy and nothing private crosses between them.

#include <sock/error.hpp>
#include <sock/socket.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace sock::detail {

/// RFC 8305 section 4: the first address's family, then the other, alternating, so that a
/// family that does not work costs one attempt delay instead of one per address; the rest of
/// the longer list keeps getaddrinfo's order at the end.
inline std::vector<addrinfo> interleave(std::vector<addrinfo> infos) {
    if (infos.empty()) return infos;
    const sock::family first_family = infos.front().family;
    std::vector<addrinfo> first, other;
    for (auto& info : infos)
        (info.family == first_family ? first : other).push_back(std::move(info));
    std::vector<addrinfo> out;
    out.reserve(first.size() + other.size());
    for (std::size_t i = 0; i < std::max(first.size(), other.size()); ++i) {
        if (i < first.size()) out.push_back(std::move(first[i]));
        if (i < other.size()) out.push_back(std::move(other[i]));
    }
    return out;
}

/// One address that did not connect: its text ("[::1]:80", or "[::1]:80: bind ..." when the
/// step that failed was not the connect) and the cause.
struct failure {
    std::string what;
    std::error_code ec;
};

/// A socket for one attempt: non-blocking, so that several attempts can be in flight, and
/// bound to source if given. On failure `step` names the call that failed, if not connect.
inline socket open_attempt(sock::family fam, int proto, const std::optional<address>& source,
                    std::string& step, std::error_code& ec) {
    const int fd = ::socket(static_cast<int>(fam), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                            proto);
    if (fd < 0) {
        ec = {errno, std::system_category()};
        step = "socket";
        return socket::invalid();
    }
    auto s = socket::adopt(fd, fam, sock::kind::stream, proto, true);
    if (source) {
        s.bind(*source, ec);
        if (ec) {
            step = "bind " + source->to_string();
            return socket::invalid();
        }
    }
    ec.clear();
    return s;
}

/// "connect <name>: a: cause; b: cause; c" (throw_error adds c's cause), or "connect a" when
/// the name had one address, so a numeric address reads as a plain connect error.
inline std::string failure_context(const address& addr, const std::vector<failure>& failed) {
    if (failed.size() == 1) return "connect " + failed.front().what;
    std::string out = "connect " + addr.to_string() + ": ";
    for (const auto& f : failed) {
        out += f.what;
        if (&f != &failed.back()) out += ": " + error_reason(f.ec) + "; ";
    }
    return out;
}

}  // namespace sock::detail
