// libFuzzer: the command-line parsers an operator's text reaches: sock::parse_address
// (--host/--port style "host:port", "[v6]:port", "unix:/path") and sock::parse_networks
// (--proxy-from). Either the text is refused with an error, or the result prints and parses
// back to itself.

#include <sock/address.hpp>
#include <sock/network.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string_view>
#include <system_error>

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    sock::address a;
    std::error_code ec;
    const bool ok = sock::parse_address(text, 8001, a, ec);
    check(ok == !ec);
    if (ok) {
        (void)a.to_string();
        (void)a.family();
    }

    try {
        const auto networks = sock::parse_networks(text);
        check(!networks.empty());
        for (const auto& n : networks) {
            check(sock::network::parse(n.to_string()) == n);
            (void)n.contains(a);
        }
    } catch (const std::invalid_argument&) {
    }
    return 0;
}
