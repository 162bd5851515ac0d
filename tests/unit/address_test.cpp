// sock::address: construction, to_string, the kernel form both ways, parse_address,
// parse_port and getaddrinfo.

#include "support.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <string>

namespace {

using test::capture;

std::string abstract_path(std::string_view name) {
    return std::string(1, '\0') + std::string(name);
}

// -- construction and to_string ---------------------------------------------------------

TEST(Address, DefaultIsEmpty) {
    sock::address a;
    EXPECT_TRUE(a.empty());
    EXPECT_FALSE(a.is_unix());
    EXPECT_EQ(a.family(), sock::family::unspec);
    EXPECT_EQ(a.port(), 0);
    EXPECT_EQ(a.host(), "");
    ::sockaddr_storage ss{};
    ::socklen_t len = 0;
    EXPECT_FALSE(a.to_native(ss, len));
}

// Users hold ports in int (argv, config files) and other integer types: every one of them
// converts without a cast or a -Wconversion warning, and out-of-range values are refused.
TEST(Address, PortOfAnyIntegerType) {
    const int i = 8001;
    const unsigned u = 8002;
    const long l = 8003;
    const std::size_t z = 8004;
    const std::uint16_t p = 8005;
    EXPECT_EQ(sock::address("localhost", i).port(), 8001);
    EXPECT_EQ(sock::address(std::string("localhost"), u).port(), 8002);
    EXPECT_EQ(sock::address("localhost", l).port(), 8003);
    EXPECT_EQ(sock::address("localhost", z).port(), 8004);
    EXPECT_EQ(sock::address("localhost", p).port(), 8005);
    const sock::address braced = {"localhost", i};  // what s.connect({"localhost", port}) builds
    EXPECT_EQ(braced.port(), 8001);
    EXPECT_EQ(sock::address("::1", 0).port(), 0);
    EXPECT_EQ(sock::address("::1", 65535).port(), 65535);
}

TEST(Address, PortOutOfRangeIsAClearError) {
    const int too_big = 70000;
    const int negative = -1;
    const unsigned long huge = 1UL << 40;
    for (auto [t, text] : {std::pair{capture([&] { sock::address("localhost", too_big); }),
                                     "port 70000 is out of range (0-65535)"},
                           std::pair{capture([&] { sock::address("localhost", negative); }),
                                     "port -1 is out of range (0-65535)"},
                           std::pair{capture([&] { sock::address(std::string("h"), huge); }),
                                     "port 1099511627776 is out of range (0-65535)"}}) {
        EXPECT_TRUE(t.is<std::out_of_range>()) << t.type_name();
        EXPECT_EQ(t.what, text);
    }
}

TEST(Address, Ipv4) {
    sock::address a("127.0.0.1", 8001);
    EXPECT_FALSE(a.empty());
    EXPECT_FALSE(a.is_unix());
    EXPECT_EQ(a.family(), sock::family::inet);
    EXPECT_EQ(a.host(), "127.0.0.1");
    EXPECT_EQ(a.port(), 8001);
    EXPECT_EQ(a.to_string(), "127.0.0.1:8001");
}

TEST(Address, Ipv6IsBracketed) {
    sock::address a("::1", 8001);
    EXPECT_EQ(a.family(), sock::family::inet6);
    EXPECT_EQ(a.host(), "::1");
    EXPECT_EQ(a.port(), 8001);
    EXPECT_EQ(a.to_string(), "[::1]:8001");
}

TEST(Address, NameNeedsResolving) {
    sock::address a("localhost", 8001);
    EXPECT_EQ(a.family(), sock::family::unspec);
    EXPECT_FALSE(a.empty());
    EXPECT_EQ(a.host(), "localhost");
    EXPECT_EQ(a.to_string(), "localhost:8001");
    ::sockaddr_storage ss{};
    ::socklen_t len = 0;
    EXPECT_FALSE(a.to_native(ss, len));
}

TEST(Address, StdStringConstructorMatchesCharPointer) {
    EXPECT_EQ(sock::address(std::string("127.0.0.1"), 80), sock::address("127.0.0.1", 80));
}

TEST(Address, EqualityComparesHostAndPort) {
    EXPECT_EQ(sock::address("127.0.0.1", 1), sock::address("127.0.0.1", 1));
    EXPECT_NE(sock::address("127.0.0.1", 1), sock::address("127.0.0.1", 2));
    EXPECT_NE(sock::address("127.0.0.1", 1), sock::address("127.0.0.2", 1));
    EXPECT_NE(sock::address("127.0.0.1", 0), sock::address::unix_path("127.0.0.1"));
}

TEST(Address, UnixPath) {
    sock::address a = sock::address::unix_path("/tmp/x");
    EXPECT_TRUE(a.is_unix());
    EXPECT_FALSE(a.empty());
    EXPECT_EQ(a.family(), sock::family::local);
    EXPECT_EQ(a.path(), "/tmp/x");
    EXPECT_EQ(a.port(), 0);
    EXPECT_EQ(a.to_string(), "/tmp/x");
}

// Documented: "The host as given, or numeric for kernel addresses; empty for Unix paths."
TEST(Address, UnixPathHasEmptyHost) {
    EXPECT_EQ(sock::address::unix_path("/tmp/x").host(), "");
}

TEST(Address, AbstractFromAtSign) {
    sock::address a = sock::address::unix_path("@name");
    EXPECT_TRUE(a.is_unix());
    EXPECT_EQ(a.family(), sock::family::local);
    EXPECT_EQ(a.path(), abstract_path("name"));
    EXPECT_EQ(a.to_string(), "@name");
}

TEST(Address, AbstractFromNulIsSameAsAtSign) {
    sock::address nul = sock::address::unix_path(abstract_path("name"));
    EXPECT_EQ(nul, sock::address::unix_path("@name"));
    EXPECT_EQ(nul.to_string(), "@name");
}

#ifndef unix
TEST(Address, UnixAndLocalAreTheSameFamily) {
    EXPECT_EQ(sock::family::unix, sock::family::local);
    EXPECT_EQ(static_cast<int>(sock::family::unix), AF_UNIX);
}
#endif

// -- to_native / from_native --------------------------------------------------------------

TEST(AddressNative, Ipv4ToNative) {
    ::sockaddr_storage ss{};
    ::socklen_t len = 0;
    ASSERT_TRUE(sock::address("127.0.0.1", 8001).to_native(ss, len));
    ASSERT_EQ(len, sizeof(::sockaddr_in));
    const auto* sin = reinterpret_cast<const ::sockaddr_in*>(&ss);
    EXPECT_EQ(sin->sin_family, AF_INET);
    EXPECT_EQ(ntohs(sin->sin_port), 8001);
    EXPECT_EQ(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
}

TEST(AddressNative, Ipv6ToNative) {
    ::sockaddr_storage ss{};
    ::socklen_t len = 0;
    ASSERT_TRUE(sock::address("::1", 8001).to_native(ss, len));
    ASSERT_EQ(len, sizeof(::sockaddr_in6));
    const auto* sin6 = reinterpret_cast<const ::sockaddr_in6*>(&ss);
    EXPECT_EQ(sin6->sin6_family, AF_INET6);
    EXPECT_EQ(ntohs(sin6->sin6_port), 8001);
    EXPECT_EQ(std::memcmp(&sin6->sin6_addr, &in6addr_loopback, sizeof(in6_addr)), 0);
}

TEST(AddressNative, UnixPathToNative) {
    ::sockaddr_storage ss{};
    ::socklen_t len = 0;
    ASSERT_TRUE(sock::address::unix_path("/tmp/x").to_native(ss, len));
    const auto* sun = reinterpret_cast<const ::sockaddr_un*>(&ss);
    EXPECT_EQ(sun->sun_family, AF_UNIX);
    EXPECT_STREQ(sun->sun_path, "/tmp/x");
    // With or without the terminating NUL, both are accepted by the kernel.
    const auto base = offsetof(::sockaddr_un, sun_path);
    EXPECT_TRUE(len == base + 6 || len == base + 7) << len;
}

TEST(AddressNative, AbstractToNativeLengthIsExact) {
    ::sockaddr_storage ss{};
    ::socklen_t len = 0;
    ASSERT_TRUE(sock::address::unix_path("@name").to_native(ss, len));
    const auto* sun = reinterpret_cast<const ::sockaddr_un*>(&ss);
    EXPECT_EQ(sun->sun_family, AF_UNIX);
    // Abstract names are length-delimited: a trailing NUL would be part of the name.
    ASSERT_EQ(len, offsetof(::sockaddr_un, sun_path) + 5);
    EXPECT_EQ(std::string(sun->sun_path, 5), abstract_path("name"));
}

TEST(AddressNative, Ipv4FromNative) {
    ::sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(8001);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    auto a = sock::address::from_native(reinterpret_cast<const ::sockaddr*>(&sin), sizeof sin);
    EXPECT_EQ(a, sock::address("127.0.0.1", 8001));
    EXPECT_EQ(a.host(), "127.0.0.1");
    EXPECT_EQ(a.port(), 8001);
    EXPECT_EQ(a.family(), sock::family::inet);
    EXPECT_EQ(a.to_string(), "127.0.0.1:8001");
}

TEST(AddressNative, Ipv6FromNative) {
    ::sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(443);
    sin6.sin6_addr = in6addr_loopback;
    auto a = sock::address::from_native(reinterpret_cast<const ::sockaddr*>(&sin6), sizeof sin6);
    EXPECT_EQ(a, sock::address("::1", 443));
    EXPECT_EQ(a.host(), "::1");
    EXPECT_EQ(a.family(), sock::family::inet6);
    EXPECT_EQ(a.to_string(), "[::1]:443");
}

TEST(AddressNative, UnixPathFromNative) {
    ::sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::strcpy(sun.sun_path, "/tmp/sock-x");
    // The kernel reports path lengths with the terminating NUL; callers may leave it out.
    for (std::size_t n : {12u, 11u}) {
        const auto len = static_cast<::socklen_t>(offsetof(::sockaddr_un, sun_path) + n);
        auto a = sock::address::from_native(reinterpret_cast<const ::sockaddr*>(&sun), len);
        EXPECT_TRUE(a.is_unix());
        EXPECT_EQ(a.path(), "/tmp/sock-x") << n;
        EXPECT_EQ(a, sock::address::unix_path("/tmp/sock-x")) << n;
    }
}

TEST(AddressNative, AbstractFromNative) {
    ::sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, "\0abc", 4);
    const auto len = static_cast<::socklen_t>(offsetof(::sockaddr_un, sun_path) + 4);
    auto a = sock::address::from_native(reinterpret_cast<const ::sockaddr*>(&sun), len);
    EXPECT_TRUE(a.is_unix());
    EXPECT_EQ(a.path(), abstract_path("abc"));
    EXPECT_EQ(a.to_string(), "@abc");
}

TEST(AddressNative, RoundTrip) {
    for (const sock::address& a :
         {sock::address("127.0.0.1", 1), sock::address("10.1.2.3", 65535), sock::address("::1", 80),
          sock::address("fe80::1", 7), sock::address("0.0.0.0", 0),
          sock::address::unix_path("/tmp/a b"), sock::address::unix_path("@abs")}) {
        ::sockaddr_storage ss{};
        ::socklen_t len = 0;
        ASSERT_TRUE(a.to_native(ss, len)) << a.to_string();
        auto back = sock::address::from_native(reinterpret_cast<const ::sockaddr*>(&ss), len);
        EXPECT_EQ(back, a);
        EXPECT_EQ(back.to_string(), a.to_string());
    }
}

// -- parse_address ------------------------------------------------------------------------

sock::address parsed(std::string_view text, std::uint16_t default_port = 0) {
    sock::address out;
    std::error_code ec;
    EXPECT_TRUE(sock::parse_address(text, default_port, out, ec)) << text << ": " << ec.message();
    EXPECT_FALSE(ec) << text;
    return out;
}

TEST(ParseAddress, HostPort) {
    EXPECT_EQ(parsed("localhost:8001"), sock::address("localhost", 8001));
    EXPECT_EQ(parsed("127.0.0.1:8001"), sock::address("127.0.0.1", 8001));
    EXPECT_EQ(parsed("example.com:0"), sock::address("example.com", 0));
    EXPECT_EQ(parsed("h:65535"), sock::address("h", 65535));
}

TEST(ParseAddress, BracketedIpv6) {
    sock::address a = parsed("[::1]:80");
    EXPECT_EQ(a, sock::address("::1", 80));
    EXPECT_EQ(a.family(), sock::family::inet6);
    EXPECT_EQ(a.to_string(), "[::1]:80");
}

TEST(ParseAddress, PortOnlyMeansAnyHost) {
    sock::address a = parsed(":8001");
    EXPECT_EQ(a.host(), "");
    EXPECT_EQ(a.port(), 8001);
    EXPECT_FALSE(a.is_unix());
    EXPECT_EQ(a, sock::address("", 8001));
}

TEST(ParseAddress, HostAloneTakesDefaultPort) {
    EXPECT_EQ(parsed("localhost", 8001), sock::address("localhost", 8001));
    EXPECT_EQ(parsed("127.0.0.1", 9), sock::address("127.0.0.1", 9));
}

TEST(ParseAddress, UnixPaths) {
    EXPECT_EQ(parsed("unix:/tmp/x"), sock::address::unix_path("/tmp/x"));
    EXPECT_EQ(parsed("/tmp/x"), sock::address::unix_path("/tmp/x"));
    EXPECT_TRUE(parsed("/tmp/x", 8001).is_unix());
    EXPECT_EQ(parsed("/tmp/x", 8001).port(), 0);
}

TEST(ParseAddress, MalformedSetsInvalidArgument) {
    for (std::string_view text :
         {"host:70000", "host:65536", "host:abc", "[::1", "[::1]:", "host:", "", "host:-1",
          "host:+80", "host: 80", ":", "[::1]x80"}) {
        sock::address out("sentinel", 1);
        std::error_code ec;
        bool ok = true;
        EXPECT_NO_THROW(ok = sock::parse_address(text, 8001, out, ec)) << '"' << text << '"';
        EXPECT_FALSE(ok) << '"' << text << "\" parsed as " << out.to_string();
        EXPECT_EQ(ec, std::errc::invalid_argument) << '"' << text << '"';
    }
}

TEST(ParseAddress, ThrowingFormReturnsAddress) {
    EXPECT_EQ(sock::parse_address("[::1]:80", 1), sock::address("::1", 80));
    EXPECT_EQ(sock::parse_address("localhost", 8001), sock::address("localhost", 8001));
}

TEST(ParseAddress, ThrowingFormNamesTheText) {
    for (std::string_view text : {"host:70000", "host:abc", "[::1"}) {
        auto t = capture([&] { sock::parse_address(text, 8001); });
        ASSERT_NE(t.type, nullptr) << text << " did not throw";
        EXPECT_NE(t.what.find(text), std::string::npos) << t.what;
        if (t.code) {
            EXPECT_EQ(t.code, std::errc::invalid_argument) << t.what;
        }
    }
}

// -- parse_port ---------------------------------------------------------------------------

TEST(ParsePort, Valid) {
    for (auto [text, value] : {std::pair<std::string_view, std::uint16_t>{"0", 0},
                               {"1", 1},
                               {"80", 80},
                               {"8001", 8001},
                               {"65535", 65535}}) {
        std::uint16_t out = 12345;
        EXPECT_TRUE(sock::parse_port(text, out)) << text;
        EXPECT_EQ(out, value) << text;
    }
}

TEST(ParsePort, Invalid) {
    for (std::string_view text : std::initializer_list<std::string_view>{
             "", "65536", "70000", "-1", "+1", " 1", "1 ", "http", "8o", "0x10", "1.5",
             "99999999999999999999", "4294967297", std::string_view("8\0", 2)}) {
        std::uint16_t out = 0;
        EXPECT_FALSE(sock::parse_port(text, out)) << '"' << text << "\" gave " << out;
    }
}

// -- getaddrinfo --------------------------------------------------------------------------

TEST(Getaddrinfo, LocalhostResolvesToLoopback) {
    auto results = sock::getaddrinfo("localhost", 8001);
    ASSERT_FALSE(results.empty());
    bool loopback = false;
    for (const auto& r : results) {
        EXPECT_TRUE(r.family == sock::family::inet || r.family == sock::family::inet6);
        EXPECT_EQ(r.addr.family(), r.family);
        EXPECT_EQ(r.type, sock::kind::stream);
        EXPECT_EQ(r.proto, IPPROTO_TCP);
        EXPECT_EQ(r.addr.port(), 8001);
        if (r.addr == sock::address("127.0.0.1", 8001) || r.addr == sock::address("::1", 8001))
            loopback = true;
    }
    EXPECT_TRUE(loopback);
}

TEST(Getaddrinfo, FamilyFilter) {
    auto results = sock::getaddrinfo("localhost", 80, sock::family::inet);
    ASSERT_FALSE(results.empty());
    for (const auto& r : results) {
        EXPECT_EQ(r.family, sock::family::inet);
        EXPECT_EQ(r.addr, sock::address("127.0.0.1", 80));
    }
}

TEST(Getaddrinfo, NumericDgram) {
    auto results = sock::getaddrinfo("127.0.0.1", 53, sock::family::unspec, sock::kind::dgram);
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].family, sock::family::inet);
    EXPECT_EQ(results[0].type, sock::kind::dgram);
    EXPECT_EQ(results[0].proto, IPPROTO_UDP);
    EXPECT_EQ(results[0].addr, sock::address("127.0.0.1", 53));
}

TEST(Getaddrinfo, NumericIpv6) {
    auto results = sock::getaddrinfo("::1", 8080, sock::family::inet6);
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].family, sock::family::inet6);
    EXPECT_EQ(results[0].addr, sock::address("::1", 8080));
    EXPECT_EQ(results[0].addr.to_string(), "[::1]:8080");
}

TEST(Getaddrinfo, PassiveEmptyHostIsAny) {
    auto results =
        sock::getaddrinfo("", 8001, sock::family::unspec, sock::kind::stream, AI_PASSIVE);
    ASSERT_FALSE(results.empty());
    bool any = false;
    for (const auto& r : results) {
        EXPECT_EQ(r.addr.port(), 8001);
        if (r.addr == sock::address("0.0.0.0", 8001) || r.addr == sock::address("::", 8001))
            any = true;
    }
    EXPECT_TRUE(any);

    auto v4 = sock::getaddrinfo("", 8001, sock::family::inet, sock::kind::stream, AI_PASSIVE);
    ASSERT_EQ(v4.size(), 1u);
    EXPECT_EQ(v4[0].addr, sock::address("0.0.0.0", 8001));
}

TEST(Getaddrinfo, CanonicalName) {
    auto results =
        sock::getaddrinfo("localhost", 1, sock::family::inet, sock::kind::stream, AI_CANONNAME);
    ASSERT_FALSE(results.empty());
    EXPECT_EQ(results[0].canonname, "localhost");
}

TEST(Getaddrinfo, ErrorCodeFormSucceeds) {
    std::error_code ec = std::make_error_code(std::errc::io_error);
    auto results =
        sock::getaddrinfo("127.0.0.1", 7, sock::family::inet, sock::kind::stream, 0, ec);
    EXPECT_FALSE(ec) << ec.message();
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].addr, sock::address("127.0.0.1", 7));
}

TEST(Getaddrinfo, WrongFamilyForLiteralFails) {
    std::error_code ec;
    auto results = sock::getaddrinfo("::1", 7, sock::family::inet, sock::kind::stream, 0, ec);
    EXPECT_TRUE(results.empty());
    EXPECT_TRUE(ec);
    auto t = capture([] { sock::getaddrinfo("::1", 7, sock::family::inet); });
    EXPECT_TRUE(t.is<sock::gaierror>()) << t.type_name();
}

}  // namespace
