#include "greet/host.hpp"

#include <netdb.h>

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

}  // namespace greet
