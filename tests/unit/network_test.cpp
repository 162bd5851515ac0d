// sock::network: CIDR text both ways, membership for IPv4, IPv6, mapped and Unix peers.

#include <sock/network.hpp>

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace {

using sock::address;
using sock::network;

std::string error_of(const std::string& text) {
    try {
        network::parse(text);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

TEST(Network, ParsesAndPrints) {
    EXPECT_EQ(network::parse("10.0.0.0/8").to_string(), "10.0.0.0/8");
    EXPECT_EQ(network::parse("::1/128").to_string(), "::1/128");
    EXPECT_EQ(network::parse("192.168.1.7").to_string(), "192.168.1.7/32");
    EXPECT_EQ(network::parse("2001:db8::").to_string(), "2001:db8::/128");
    EXPECT_EQ(network::parse("0.0.0.0/0").to_string(), "0.0.0.0/0");
    EXPECT_EQ(network::parse("unix").to_string(), "unix");
    EXPECT_EQ(network::parse("10.0.0.0/8").family(), sock::family::inet);
    EXPECT_EQ(network::parse("fe80::/10").prefix(), 10);
}

TEST(Network, RefusesWithOneLineSayingWhy) {
    EXPECT_EQ(error_of("10.0.0.1/8"), "network 10.0.0.1/8: host bits are set (the network is 10.0.0.0/8)");
    EXPECT_EQ(error_of("10.0.0.0/33"), "network 10.0.0.0/33: prefix length must be a number from 0 to 32");
    EXPECT_EQ(error_of("::/129"), "network ::/129: prefix length must be a number from 0 to 128");
    EXPECT_EQ(error_of("10.0.0.0/"), "network 10.0.0.0/: prefix length must be a number from 0 to 32");
    EXPECT_EQ(error_of("10.0.0.0/+8"), "network 10.0.0.0/+8: prefix length must be a number from 0 to 32");
    EXPECT_EQ(error_of("localhost"),
              "network localhost: not an IPv4 or IPv6 address, a network such as 10.0.0.0/8, or unix");
    EXPECT_NE(error_of(""), "");
    EXPECT_NE(error_of("10.0.0/8"), "");
}

TEST(Network, ContainsIpv4) {
    const auto n = network::parse("10.1.0.0/16");
    EXPECT_TRUE(n.contains(address("10.1.0.0", 1)));
    EXPECT_TRUE(n.contains(address("10.1.255.255", 1)));
    EXPECT_FALSE(n.contains(address("10.2.0.0", 1)));
    EXPECT_FALSE(n.contains(address("::1", 1)));
    EXPECT_FALSE(n.contains(address::unix_path("/x")));
    EXPECT_FALSE(n.contains(address("localhost", 1)));  // names are never trusted
    EXPECT_FALSE(n.contains(address()));
    const auto odd = network::parse("192.168.0.0/23");  // a prefix inside a byte
    EXPECT_TRUE(odd.contains(address("192.168.1.9", 0)));
    EXPECT_FALSE(odd.contains(address("192.168.2.9", 0)));
    EXPECT_TRUE(network::parse("0.0.0.0/0").contains(address("203.0.113.5", 0)));
}

TEST(Network, ContainsIpv6AndMapped) {
    const auto n = network::parse("2001:db8::/32");
    EXPECT_TRUE(n.contains(address("2001:db8:ffff::1", 1)));
    EXPECT_FALSE(n.contains(address("2001:db9::1", 1)));
    EXPECT_FALSE(n.contains(address("10.0.0.1", 1)));
    // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d.
    EXPECT_TRUE(network::parse("127.0.0.0/8").contains(address("::ffff:127.0.0.5", 1)));
    EXPECT_FALSE(network::parse("::1/128").contains(address("::ffff:127.0.0.1", 1)));
}

TEST(Network, UnixAndLists) {
    EXPECT_TRUE(network::parse("unix").contains(address::unix_path("/run/s")));
    EXPECT_TRUE(network::parse("unix").contains(address::unix_path("")));  // an unnamed peer
    EXPECT_FALSE(network::parse("unix").contains(address("127.0.0.1", 1)));
    const auto list = sock::parse_networks("10.0.0.0/8,::1,unix");
    ASSERT_EQ(list.size(), 3u);
    EXPECT_TRUE(sock::contains(list, address("10.9.9.9", 1)));
    EXPECT_TRUE(sock::contains(list, address("::1", 1)));
    EXPECT_FALSE(sock::contains(list, address("::2", 1)));
    EXPECT_THROW(sock::parse_networks("10.0.0.0/8,"), std::invalid_argument);
    const auto loopback = sock::loopback_networks();
    EXPECT_TRUE(sock::contains(loopback, address("127.1.2.3", 1)));
    EXPECT_TRUE(sock::contains(loopback, address("::1", 1)));
    EXPECT_TRUE(sock::contains(loopback, address::unix_path("/x")));
    EXPECT_FALSE(sock::contains(loopback, address("10.0.0.1", 1)));
}

}  // namespace
