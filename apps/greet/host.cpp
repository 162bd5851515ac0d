#include "greet/host.hpp"

#include <netdb.h>

#include <charconv>
#include <stdexcept>

namespace greet {

sock::family family_for(const std::string& host) {
    return sock::address(host, 0).family() == sock::family::inet6 ? sock::family::inet6
                                                                  : sock::family::inet;
}

sock::address listen_address(const std::string& host, std::uint16_t port, sock::kind type) {
    if (sock::address(host, 0).family() != sock::family::unspec) return sock::address(host, port);
    const auto infos = sock::getaddrinfo(host, port, family_for(host), type, AI_PASSIVE);
    return sock::address(infos.front().addr.host(), port);
}

std::pair<std::string, std::uint16_t> split_host_port(std::string_view text) {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
        throw std::invalid_argument(std::string(text) + " has no host; use HOST:PORT");
    std::string_view host = text.substr(0, colon);
    const std::string_view digits = text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string_view::npos) {
        throw std::invalid_argument(std::string(text) + ": an IPv6 address goes in brackets, as [::1]:9100");
    }
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (host.empty() || digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || port > 65535)
        throw std::invalid_argument(std::string(text) + " is not HOST:PORT with a port from 0 to 65535");
    return {std::string(host), static_cast<std::uint16_t>(port)};
}

}  // namespace greet
