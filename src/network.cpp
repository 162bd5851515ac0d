#include <sock/network.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>
#include <stdexcept>

namespace sock SOCK_API {

namespace {

[[noreturn]] void bad(std::string_view text, const std::string& why) {
    throw std::invalid_argument("network " + std::string(text) + ": " + why);
}

// The peer's address bytes, IPv4-mapped IPv6 folded to IPv4; false for names and paths.
bool address_bytes(const address& peer, sock::family& fam, std::array<std::uint8_t, 16>& out) {
    ::sockaddr_storage ss{};
    ::socklen_t len = 0;
    if (peer.is_unix() || !peer.to_native(ss, len)) return false;
    if (ss.ss_family == AF_INET) {
        const auto& in = reinterpret_cast<const ::sockaddr_in&>(ss);
        std::memcpy(out.data(), &in.sin_addr, 4);
        fam = sock::family::inet;
        return true;
    }
    if (ss.ss_family != AF_INET6) return false;
    const auto& in6 = reinterpret_cast<const ::sockaddr_in6&>(ss);
    if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
        std::memcpy(out.data(), in6.sin6_addr.s6_addr + 12, 4);
        fam = sock::family::inet;
    } else {
        std::memcpy(out.data(), in6.sin6_addr.s6_addr, 16);
        fam = sock::family::inet6;
    }
    return true;
}

}  // namespace

network network::parse(std::string_view text) {
    network n;
    if (text == "unix") {
        n.family_ = sock::family::local;
        return n;
    }
    const auto slash = text.find('/');
    const std::string host(text.substr(0, slash));
    if (::inet_pton(AF_INET, host.c_str(), n.bytes_.data()) == 1) {
        n.family_ = sock::family::inet;
    } else if (::inet_pton(AF_INET6, host.c_str(), n.bytes_.data()) == 1) {
        n.family_ = sock::family::inet6;
    } else {
        bad(text, "not an IPv4 or IPv6 address, a network such as 10.0.0.0/8, or unix");
    }
    const int bits = n.family_ == sock::family::inet ? 32 : 128;
    n.prefix_ = bits;
    if (slash != std::string_view::npos) {
        const auto digits = text.substr(slash + 1);
        const char* end = digits.data() + digits.size();
        const auto [p, ec] = std::from_chars(digits.data(), end, n.prefix_);
        if (digits.empty() || ec != std::errc() || p != end || n.prefix_ < 0 || n.prefix_ > bits)
            bad(text, "prefix length must be a number from 0 to " + std::to_string(bits));
    }
    network clean = n;
    for (int i = n.prefix_; i < bits; ++i)
        clean.bytes_[static_cast<std::size_t>(i / 8)] &= static_cast<std::uint8_t>(~(0x80 >> (i % 8)));
    if (clean != n) bad(text, "host bits are set (the network is " + clean.to_string() + ")");
    return n;
}

bool network::contains(const address& peer) const noexcept {
    if (family_ == sock::family::local) return peer.is_unix();
    sock::family fam = sock::family::unspec;
    std::array<std::uint8_t, 16> bytes{};
    try {
        if (!address_bytes(peer, fam, bytes) || fam != family_) return false;
    } catch (...) {
        return false;
    }
    const auto whole = static_cast<std::size_t>(prefix_ / 8);
    if (std::memcmp(bytes.data(), bytes_.data(), whole) != 0) return false;
    const int rest = prefix_ % 8;
    if (rest == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (bytes[whole] & mask) == (bytes_[whole] & mask);
}

std::string network::to_string() const {
    if (family_ == sock::family::local) return "unix";
    char text[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(family_ == sock::family::inet ? AF_INET : AF_INET6, bytes_.data(), text, sizeof text);
    return std::string(text) + "/" + std::to_string(prefix_);
}

std::vector<network> parse_networks(std::string_view list) {
    std::vector<network> out;
    for (;;) {
        const auto comma = list.find(',');
        out.push_back(network::parse(list.substr(0, comma)));
        if (comma == std::string_view::npos) return out;
        list.remove_prefix(comma + 1);
    }
}

bool contains(const std::vector<network>& networks, const address& peer) noexcept {
    for (const auto& n : networks)
        if (n.contains(peer)) return true;
    return false;
}

std::vector<network> loopback_networks() {
    return {network::parse("127.0.0.0/8"), network::parse("::1/128"), network::parse("unix")};
}

}  // namespace sock
