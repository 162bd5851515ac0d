#include "greet/host.hpp"

namespace greet {

sock::family family_for(const std::string& host) {
    return sock::address(host, 0).family() == sock::family::inet6 ? sock::family::inet6
                                                                  : sock::family::inet;
}

}  // namespace greet
