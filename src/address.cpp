#include <sock/address.hpp>
#include <sock/error.hpp>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <charconv>
#include <cstddef>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace sock SOCK_API {

namespace {

// Splits "fe80::1%2" into the address and a numeric scope; false for named scopes.
bool split_scope(std::string_view host, std::string& addr, std::uint32_t& scope) {
    const auto pct = host.find('%');
    addr.assign(host.substr(0, pct));
    scope = 0;
    if (pct == std::string_view::npos) return true;
    const auto digits = host.substr(pct + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), scope);
    return ec == std::errc() && end == digits.data() + digits.size() && !digits.empty();
}

bool is_ipv4(const std::string& host) {
    ::in_addr a{};
    return ::inet_pton(AF_INET, host.c_str(), &a) == 1;
}

bool is_ipv6(const std::string& host) {
    std::string addr;
    std::uint32_t scope = 0;
    ::in6_addr a{};
    return split_scope(host, addr, scope) && ::inet_pton(AF_INET6, addr.c_str(), &a) == 1;
}

}  // namespace

address::address(std::string host, std::uint16_t port)
    : kind_(tag::host_port), host_(std::move(host)), port_(port) {}

void address::throw_bad_port(long long port) {
    throw std::out_of_range("port " + std::to_string(port) + " is out of range (0-65535)");
}

void address::throw_bad_port(unsigned long long port) {
    throw std::out_of_range("port " + std::to_string(port) + " is out of range (0-65535)");
}

address address::unix_path(std::string path) {
    address a;
    a.kind_ = tag::unix_path;
    if (!path.empty() && path.front() == '@') path.front() = '\0';
    a.host_ = std::move(path);
    return a;
}

address address::from_native(const ::sockaddr* sa, ::socklen_t len) {
    if (sa == nullptr || len < static_cast<::socklen_t>(sizeof(sa_family_t))) return {};
    char text[INET6_ADDRSTRLEN] = {};
    switch (sa->sa_family) {
    case AF_INET: {
        const auto* in = reinterpret_cast<const ::sockaddr_in*>(sa);
        ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
        return address(text, ntohs(in->sin_port));
    }
    case AF_INET6: {
        const auto* in6 = reinterpret_cast<const ::sockaddr_in6*>(sa);
        ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
        std::string host = text;
        if (in6->sin6_scope_id != 0) host += '%' + std::to_string(in6->sin6_scope_id);
        address a(std::move(host), ntohs(in6->sin6_port));
        a.scope_id_ = in6->sin6_scope_id;
        return a;
    }
    case AF_UNIX: {
        const auto* un = reinterpret_cast<const ::sockaddr_un*>(sa);
        const auto offset = offsetof(::sockaddr_un, sun_path);
        std::size_t n = len > offset ? len - offset : 0;
        n = std::min(n, sizeof un->sun_path);
        // Filesystem paths may come NUL-terminated; abstract names keep every byte.
        if (n > 0 && un->sun_path[0] != '\0') n = ::strnlen(un->sun_path, n);
        address a;
        a.kind_ = tag::unix_path;
        a.host_.assign(un->sun_path, n);
        return a;
    }
    default:
        return {};
    }
}

namespace {
const std::string no_text;
}  // namespace

// One string holds the host or the path, whichever this address has.
const std::string& address::host() const noexcept {
    return kind_ == tag::host_port ? host_ : no_text;
}

const std::string& address::path() const noexcept {
    return kind_ == tag::unix_path ? host_ : no_text;
}

sock::family address::family() const noexcept {
    switch (kind_) {
    case tag::unix_path:
        return sock::family::local;
    case tag::host_port:
        if (is_ipv4(host_)) return sock::family::inet;
        if (is_ipv6(host_)) return sock::family::inet6;
        return sock::family::unspec;
    case tag::none:
        break;
    }
    return sock::family::unspec;
}

std::string address::to_string() const {
    switch (kind_) {
    case tag::none:
        return "<no address>";
    case tag::unix_path:
        if (!host_.empty() && host_.front() == '\0') return '@' + host_.substr(1);
        return host_.empty() ? std::string("<unnamed>") : host_;
    case tag::host_port:
        if (host_.find(':') != std::string::npos)
            return '[' + host_ + "]:" + std::to_string(port_);
        return host_ + ':' + std::to_string(port_);
    }
    return {};
}

bool address::to_native(::sockaddr_storage& out, ::socklen_t& len) const noexcept {
    out = {};
    if (kind_ == tag::unix_path) {
        auto* un = reinterpret_cast<::sockaddr_un*>(&out);
        const bool abstract = !host_.empty() && host_.front() == '\0';
        // A filesystem path needs room for its terminating NUL; an abstract name does not.
        if (host_.size() + (abstract ? 0 : 1) > sizeof un->sun_path) return false;
        un->sun_family = AF_UNIX;
        std::memcpy(un->sun_path, host_.data(), host_.size());
        len = static_cast<::socklen_t>(offsetof(::sockaddr_un, sun_path) + host_.size() +
                                       (abstract ? 0 : 1));
        return true;
    }
    if (kind_ != tag::host_port) return false;
    auto* in = reinterpret_cast<::sockaddr_in*>(&out);
    if (::inet_pton(AF_INET, host_.c_str(), &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(port_);
        len = sizeof(::sockaddr_in);
        return true;
    }
    std::string addr;
    std::uint32_t scope = 0;
    auto* in6 = reinterpret_cast<::sockaddr_in6*>(&out);
    if (split_scope(host_, addr, scope) && ::inet_pton(AF_INET6, addr.c_str(), &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port_);
        in6->sin6_scope_id = scope != 0 ? scope : scope_id_;
        len = sizeof(::sockaddr_in6);
        return true;
    }
    out = {};
    return false;
}

bool parse_port(std::string_view text, std::uint16_t& out) noexcept {
    if (text.empty() || text.size() > 5) return false;
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value > 65535) return false;
    out = static_cast<std::uint16_t>(value);
    return true;
}

namespace {

// Returns an empty string on success, else what is wrong with the text.
std::string parse(std::string_view text, std::uint16_t default_port, address& out) {
    if (text.empty()) return "empty address";
    if (text.starts_with("unix:")) text.remove_prefix(5);
    else if (text.front() != '/') {
        std::string_view host = text;
        std::string_view port;
        bool has_port = false;
        if (text.front() == '[') {
            const auto close = text.find(']');
            if (close == std::string_view::npos) return "missing ']'";
            host = text.substr(1, close - 1);
            const auto rest = text.substr(close + 1);
            if (!rest.empty()) {
                if (rest.front() != ':') return "expected ':' after ']'";
                port = rest.substr(1);
                has_port = true;
            }
            if (!is_ipv6(std::string(host))) return "not an IPv6 address inside []";
        } else if (const auto colon = text.find(':'); colon != std::string_view::npos &&
                                                      text.find(':', colon + 1) == std::string_view::npos) {
            host = text.substr(0, colon);
            port = text.substr(colon + 1);
            has_port = true;
        }
        // Several colons without brackets: a bare IPv6 literal, no port.
        std::uint16_t p = default_port;
        if (has_port && !parse_port(port, p)) {
            return port.empty() ? "missing port after ':'" : "port must be a number 0..65535";
        }
        out = address(std::string(host), p);
        return {};
    }
    if (text.empty()) return "empty Unix socket path";
    out = address::unix_path(std::string(text));
    ::sockaddr_storage ss{};
    ::socklen_t len = 0;
    if (!out.to_native(ss, len)) return "Unix socket path too long";
    return {};
}

}  // namespace

bool parse_address(std::string_view text, std::uint16_t default_port, address& out,
                   std::error_code& ec) {
    address a;
    if (!parse(text, default_port, a).empty()) {
        ec = std::make_error_code(std::errc::invalid_argument);
        return false;
    }
    ec.clear();
    out = std::move(a);
    return true;
}

address parse_address(std::string_view text, std::uint16_t default_port) {
    address a;
    const auto why = parse(text, default_port, a);
    if (!why.empty())
        throw std::invalid_argument("invalid address \"" + std::string(text) + "\": " + why);
    return a;
}

std::vector<addrinfo> getaddrinfo(const std::string& host, std::uint16_t port, sock::family fam,
                                  sock::kind type, int flags, std::error_code& ec) {
    ::addrinfo hints{};
    hints.ai_family = static_cast<int>(fam);
    hints.ai_socktype = static_cast<int>(type);
    hints.ai_flags = flags;
    ::addrinfo* res = nullptr;
    const auto service = std::to_string(port);
    const int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res);
    if (rc != 0) {
        ec = rc == EAI_SYSTEM ? std::error_code(errno, std::system_category())
                              : std::error_code(rc, gai_category());
        return {};
    }
    std::unique_ptr<::addrinfo, decltype(&::freeaddrinfo)> owner(res, &::freeaddrinfo);
    std::vector<addrinfo> out;
    for (auto* ai = res; ai != nullptr; ai = ai->ai_next) {
        out.push_back({static_cast<sock::family>(ai->ai_family), static_cast<sock::kind>(ai->ai_socktype),
                       ai->ai_protocol, ai->ai_canonname != nullptr ? ai->ai_canonname : "",
                       address::from_native(ai->ai_addr, ai->ai_addrlen)});
    }
    ec.clear();
    return out;
}

std::vector<addrinfo> getaddrinfo(const std::string& host, std::uint16_t port, sock::family fam,
                                  sock::kind type, int flags) {
    std::error_code ec;
    auto out = getaddrinfo(host, port, fam, type, flags, ec);
    if (ec) throw_error(ec, "getaddrinfo " + address(host, port).to_string());
    return out;
}

}  // namespace sock
