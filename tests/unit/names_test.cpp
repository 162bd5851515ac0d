// Name and address helpers: gethostname, inet_pton/inet_ntop, getnameinfo. Only numeric
// addresses and private hosts files (RUN_WITH_HOSTS): no real DNS.

#include "support.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/utsname.h>

#include <stdexcept>
#include <string>

namespace {

using test::capture;

TEST(Gethostname, MatchesUname) {
    ::utsname u{};
    ASSERT_EQ(::uname(&u), 0);
    EXPECT_EQ(sock::gethostname(), u.nodename);
    std::error_code ec = std::make_error_code(std::errc::io_error);
    EXPECT_EQ(sock::gethostname(ec), u.nodename);
    EXPECT_FALSE(ec);
}

TEST(InetPton, Ipv4IsFourBytesInNetworkOrder) {
    EXPECT_EQ(sock::inet_pton(sock::family::inet, "127.0.0.1"), std::string("\x7f\0\0\x01", 4));
    EXPECT_EQ(sock::inet_pton(sock::family::inet, "255.1.2.3"), std::string("\xff\x01\x02\x03", 4));
}

TEST(InetPton, Ipv6IsSixteenBytes) {
    std::string loopback(16, '\0');
    loopback[15] = 1;
    EXPECT_EQ(sock::inet_pton(sock::family::inet6, "::1"), loopback);
    const auto mapped = sock::inet_pton(sock::family::inet6, "::ffff:10.0.0.1");
    ASSERT_EQ(mapped.size(), 16u);
    EXPECT_EQ(mapped.substr(10), std::string("\xff\xff\x0a\0\0\x01", 6));
}

TEST(InetPton, BadTextThrowsInvalidArgumentNamingIt) {
    auto t = capture([] { (void)sock::inet_pton(sock::family::inet, "1.2.3"); });
    ASSERT_TRUE(t.is<std::invalid_argument>()) << t.type_name();
    EXPECT_EQ(t.what, "inet_pton inet \"1.2.3\": illegal IP address string");
    // An IPv6 literal is no IPv4 address, and an embedded NUL does not cut the text short.
    EXPECT_THROW((void)sock::inet_pton(sock::family::inet, "::1"), std::invalid_argument);
    EXPECT_THROW((void)sock::inet_pton(sock::family::inet, std::string("1.2.3.4\0junk", 12)),
                 std::invalid_argument);
    EXPECT_THROW((void)sock::inet_pton(sock::family::inet6, "1.2.3.4"), std::invalid_argument);
    EXPECT_THROW((void)sock::inet_pton(sock::family::inet6, ""), std::invalid_argument);
}

TEST(InetPton, ErrorCodeForm) {
    std::error_code ec;
    EXPECT_EQ(sock::inet_pton(sock::family::inet, "nope", ec), "");
    EXPECT_EQ(ec, std::errc::invalid_argument);
    EXPECT_EQ(sock::inet_pton(sock::family::inet, "1.2.3.4", ec).size(), 4u);
    EXPECT_FALSE(ec);
    EXPECT_EQ(sock::inet_pton(sock::family::local, "1.2.3.4", ec), "");
    EXPECT_EQ(ec, std::errc::address_family_not_supported);
}

TEST(InetPton, OtherFamilyThrowsSockError) {
    auto t = capture([] { (void)sock::inet_pton(sock::family::local, "1.2.3.4"); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name();
    EXPECT_EQ(t.code, std::errc::address_family_not_supported);
    EXPECT_TRUE(test::starts_with(t.what, "inet_pton unix \"1.2.3.4\": ")) << t.what;
}

TEST(InetNtop, RoundTripsBothFamilies) {
    for (const char* text : {"0.0.0.0", "127.0.0.1", "192.168.10.255"})
        EXPECT_EQ(sock::inet_ntop(sock::family::inet, sock::inet_pton(sock::family::inet, text)), text);
    for (const char* text : {"::", "::1", "fe80::1:2", "2001:db8::ff00:42:8329"})
        EXPECT_EQ(sock::inet_ntop(sock::family::inet6, sock::inet_pton(sock::family::inet6, text)), text);
    EXPECT_EQ(sock::inet_ntop(sock::family::inet, std::string("\x0a\0\0\x01", 4)), "10.0.0.1");
}

TEST(InetNtop, WrongLengthThrowsInvalidArgument) {
    auto t = capture([] { (void)sock::inet_ntop(sock::family::inet, "abc"); });
    ASSERT_TRUE(t.is<std::invalid_argument>()) << t.type_name();
    EXPECT_EQ(t.what, "inet_ntop inet: 3 bytes is an invalid length of packed IP address string");
    EXPECT_THROW((void)sock::inet_ntop(sock::family::inet6, std::string(4, '\0')), std::invalid_argument);
    std::error_code ec;
    EXPECT_EQ(sock::inet_ntop(sock::family::inet, std::string(16, '\0'), ec), "");
    EXPECT_EQ(ec, std::errc::invalid_argument);
    EXPECT_EQ(sock::inet_ntop(sock::family::unspec, std::string(4, '\0'), ec), "");
    EXPECT_EQ(ec, std::errc::address_family_not_supported);
    EXPECT_THROW((void)sock::inet_ntop(sock::family::unspec, std::string(4, '\0')), sock::error);
}

TEST(Getnameinfo, NumericIpv4) {
    const auto [host, service] =
        sock::getnameinfo(sock::address("127.0.0.1", 8001), NI_NUMERICHOST | NI_NUMERICSERV);
    EXPECT_EQ(host, "127.0.0.1");
    EXPECT_EQ(service, "8001");
}

TEST(Getnameinfo, NumericIpv6) {
    const auto [host, service] =
        sock::getnameinfo(sock::address("::1", 443), NI_NUMERICHOST | NI_NUMERICSERV);
    EXPECT_EQ(host, "::1");
    EXPECT_EQ(service, "443");
}

TEST(Getnameinfo, HostNameIsNotResolvedFirst) {
    auto t = capture([] { (void)sock::getnameinfo(sock::address("localhost", 80), NI_NUMERICHOST); });
    ASSERT_TRUE(t.is<sock::gaierror>()) << t.type_name();
    EXPECT_EQ(t.code, std::error_code(EAI_NONAME, sock::gai_category()));
    EXPECT_TRUE(test::starts_with(t.what, "getnameinfo localhost:80: ")) << t.what;
}

TEST(Getnameinfo, UnixPathIsAFamilyError) {
    std::error_code ec;
    const auto names = sock::getnameinfo(sock::address::unix_path("/tmp/x.sock"), 0, ec);
    EXPECT_EQ(ec, std::error_code(EAI_FAMILY, sock::gai_category()));
    EXPECT_EQ(names.first, "");
    EXPECT_THROW((void)sock::getnameinfo(sock::address::unix_path("/tmp/x.sock")), sock::gaierror);
}

TEST(Getnameinfo, NamesComeFromTheHostsFile) {
    RUN_WITH_HOSTS("127.0.0.1 sock-unit-names.test\n::1 sock-unit-names6.test\n", [] {
        EXPECT_EQ(sock::getnameinfo(sock::address("127.0.0.1", 9), NI_NAMEREQD | NI_NUMERICSERV),
                  std::make_pair(std::string("sock-unit-names.test"), std::string("9")));
        EXPECT_EQ(sock::getnameinfo(sock::address("::1", 9), NI_NAMEREQD | NI_NUMERICSERV).first,
                  "sock-unit-names6.test");
        // NI_NUMERICHOST wins over the file.
        EXPECT_EQ(sock::getnameinfo(sock::address("127.0.0.1", 9), NI_NUMERICHOST | NI_NUMERICSERV).first,
                  "127.0.0.1");
    });
}

}  // namespace
