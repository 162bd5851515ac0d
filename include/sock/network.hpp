#pragma once

// Networks in CIDR notation ("10.0.0.0/8", "::1/128"), as Python's ipaddress.ip_network:
// which peers a server trusts to speak for others (server_config::proxy_from).

#include <sock/address.hpp>
#include <sock/export.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sock SOCK_API {

/// An IPv4 or IPv6 network, or every Unix socket peer ("unix").
class network {
public:
    /// Parses "10.0.0.0/8", "::1/128", an address alone (a network of one) or "unix".
    /// Strict, as ip_network(strict=True): host bits set ("10.0.0.1/8") are an error.
    /// Throws std::invalid_argument naming the text and what is wrong with it.
    static network parse(std::string_view text);

    /// Whether the peer is in this network; an IPv4-mapped IPv6 peer (::ffff:10.1.2.3, what
    /// a dual-stack listener sees) counts as its IPv4 address. Names never match.
    bool contains(const address& peer) const noexcept;

    /// "10.0.0.0/8", "::1/128" or "unix".
    std::string to_string() const;

    sock::family family() const noexcept { return family_; }
    int prefix() const noexcept { return prefix_; }

    friend bool operator==(const network&, const network&) = default;

private:
    sock::family family_ = sock::family::unspec;
    int prefix_ = 0;
    std::array<std::uint8_t, 16> bytes_{};  // IPv4 in the first 4
};

/// Parses a comma-separated list of networks ("10.0.0.0/8,::1,unix"); throws as parse does.
std::vector<network> parse_networks(std::string_view list);

/// Whether any network in the list contains the peer.
bool contains(const std::vector<network>& networks, const address& peer) noexcept;

/// 127.0.0.0/8, ::1/128 and unix: the peers a server trusts unless told otherwise.
std::vector<network> loopback_networks();

}  // namespace sock
