// create_connection's Happy Eyeballs (RFC 8305): families alternate, a silent first address
// does not hold up the next one, the winner's rivals are closed, the delay is the caller's.

#include "silent_address.hpp"
#include "support.hpp"

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace {

using namespace std::chrono_literals;
using test::capture;
using test::resolved;
using test::same_port;
using test::silent_first;

/// A name for ::1 and 127.0.0.1, seen only inside RUN_WITH_HOSTS's child.
constexpr const char* two_family_hosts = "::1 he.sock-test\n127.0.0.1 he.sock-test\n";

std::size_t open_descriptors() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd"))
        ++n;
    return n;
}

TEST(HappyEyeballs, SilentFirstAddressDoesNotHoldUpTheSecond) {
    SKIP_WITHOUT_IPV6();
    RUN_WITH_HOSTS(two_family_hosts, [] {
        silent_first setup("he.sock-test");
        // Three seconds for the whole call: one at a time, the first address would use them
        // all (OneAtATimeWaitsOutTheSilentAddress), so connecting at all means both raced.
        sock::socket c = sock::create_connection(sock::address("he.sock-test", setup.port), 3s);
        EXPECT_EQ(c.getpeername(), sock::address(setup.second, setup.port));
        EXPECT_EQ(c.gettimeout(), sock::timeout_t(3s));
        auto [conn, peer] = setup.listener().accept();
        EXPECT_EQ(peer, c.getsockname());
        c.sendall("raced");
        EXPECT_EQ(conn.recv(10), "raced");
    });
}

TEST(HappyEyeballs, ConnectsToIpv4WhenIpv6IsSilent) {
    SKIP_WITHOUT_IPV6();
    RUN_WITH_HOSTS(two_family_hosts, [] {
        // The case the RFC is for: glibc puts ::1 first, and that is the one that is down.
        silent_first setup("he.sock-test");
        ASSERT_EQ(setup.first, "::1") << "getaddrinfo's order here";
        sock::socket c = sock::create_connection(sock::address("he.sock-test", setup.port), 3s);
        EXPECT_EQ(c.family(), sock::family::inet);
        EXPECT_EQ(c.getpeername(), sock::address("127.0.0.1", setup.port));
    });
}

TEST(HappyEyeballs, OneAtATimeWaitsOutTheSilentAddress) {
    SKIP_WITHOUT_IPV6();
    RUN_WITH_HOSTS(two_family_hosts, [] {
        silent_first setup("he.sock-test");
        const sock::address target("he.sock-test", setup.port);
        // No delay means no racing: the silent address takes the whole second, the timeout
        // covers the whole call, and the listening address is never tried.
        auto t = capture([&] { sock::create_connection(target, 1s, std::nullopt, std::nullopt); });
        ASSERT_TRUE(t.is<sock::timeout>()) << t.type_name() << ": " << t.what;
        const std::string p = ":" + std::to_string(setup.port);
        const auto at = [](const std::string& host) {
            return host.find(':') != std::string::npos ? "[" + host + "]" : host;
        };
        EXPECT_EQ(t.what, "connect " + target.to_string() + ": " + at(setup.first) + p +
                              ": timed out; " + at(setup.second) + p + ": timed out")
            << t.what;
    });
}

TEST(HappyEyeballs, DelayIsTheCallers) {
    SKIP_WITHOUT_IPV6();
    RUN_WITH_HOSTS(two_family_hosts, [] {
        silent_first setup("he.sock-test");
        const sock::address target("he.sock-test", setup.port);
        // A delay longer than the timeout: the second address never gets its turn.
        auto t = capture([&] { sock::create_connection(target, 1s, std::nullopt, 30s); });
        ASSERT_TRUE(t.is<sock::timeout>()) << t.type_name() << ": " << t.what;
        // Zero: every address at once.
        sock::socket c = sock::create_connection(target, 3s, std::nullopt, 0ms);
        EXPECT_EQ(c.getpeername(), sock::address(setup.second, setup.port));
    });
}

TEST(HappyEyeballs, WinnerClosesTheOtherAttempts) {
    SKIP_WITHOUT_IPV6();
    RUN_WITH_HOSTS(two_family_hosts, [] {
        silent_first setup("he.sock-test");
        const std::size_t before = open_descriptors();
        {
            // The attempt on the silent address is still in flight when the second wins.
            sock::socket c =
                sock::create_connection(sock::address("he.sock-test", setup.port), 3s);
            EXPECT_EQ(c.getpeername(), sock::address(setup.second, setup.port));
            EXPECT_EQ(open_descriptors(), before + 1);
        }
        EXPECT_EQ(open_descriptors(), before);
    });
}

/// RFC 8305 section 4's order: the first address's family, then the other, alternating.
std::vector<sock::address> interleaved(const std::vector<sock::addrinfo>& infos) {
    std::vector<sock::address> first, other, out;
    for (const auto& i : infos) (i.family == infos[0].family ? first : other).push_back(i.addr);
    for (std::size_t k = 0; k < std::max(first.size(), other.size()); ++k) {
        if (k < first.size()) out.push_back(first[k]);
        if (k < other.size()) out.push_back(other[k]);
    }
    return out;
}

TEST(HappyEyeballs, FamiliesAlternateAndEveryFailureIsNamed) {
    SKIP_WITHOUT_IPV6();
    // Two addresses of each family (a v4-mapped one is IPv6 to getaddrinfo), all refusing.
    RUN_WITH_HOSTS("127.0.0.1 mix.sock-test\n127.0.0.2 mix.sock-test\n::1 mix.sock-test\n"
                   "::ffff:127.0.0.3 mix.sock-test\n", [] {
        const auto infos = sock::getaddrinfo("mix.sock-test", 0);
        ASSERT_EQ(infos.size(), 4u);
        const auto order = interleaved(infos);
        std::vector<sock::address> raw;
        for (const auto& i : infos) raw.push_back(i.addr);
        ASSERT_NE(order, raw) << "getaddrinfo already alternates here: nothing to show";

        auto refusing = same_port({"::1", "127.0.0.1", "127.0.0.2", "127.0.0.3"});
        const std::uint16_t port = refusing[0].getsockname().port();
        const sock::address target("mix.sock-test", port);
        auto t = capture([&] { sock::create_connection(target, 10s); });
        ASSERT_TRUE(t.is<sock::error>()) << t.type_name() << ": " << t.what;
        EXPECT_EQ(t.code, std::errc::connection_refused);
        // Each refusal ends its attempt at once, so the list is in the order they started.
        std::string expected = "connect " + target.to_string() + ": ";
        for (const auto& a : order) {
            if (&a != &order.front()) expected += "; ";
            expected += sock::address(a.host(), port).to_string() + ": Connection refused";
        }
        EXPECT_EQ(t.what, expected);
    });
}

TEST(HappyEyeballs, ErrorCodeForm) {
    sock::socket refusing = test::refusing_v4();
    std::error_code ec;
    sock::socket s = sock::create_connection(refusing.getsockname(), 2s, std::nullopt,
                                             sock::default_happy_eyeballs_delay, ec);
    EXPECT_EQ(ec, std::errc::connection_refused);
    EXPECT_FALSE(s);

    sock::socket l = test::listener_v4();
    s = sock::create_connection(l.getsockname(), 2s, std::nullopt,
                                sock::default_happy_eyeballs_delay, ec);
    EXPECT_FALSE(ec) << ec.message();
    ASSERT_TRUE(s);
    EXPECT_EQ(s.getpeername(), l.getsockname());
}

TEST(HappyEyeballs, ZeroTimeoutNeverWaits) {
    // Python's create_connection(timeout=0): a non-blocking connect that reports it is underway.
    sock::socket l = test::listener_v4();
    auto t = capture([&] { sock::create_connection(l.getsockname(), 0s); });
    if (t.type == nullptr) GTEST_SKIP() << "the kernel connected at once";
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name() << ": " << t.what;
    EXPECT_EQ(t.code, std::errc::operation_in_progress);
}

TEST(HappyEyeballs, NegativeDelayIsRejected) {
    sock::socket l = test::listener_v4();
    auto t = capture([&] { sock::create_connection(l.getsockname(), 1s, std::nullopt, -1ms); });
    EXPECT_TRUE(t.is<std::invalid_argument>()) << t.type_name() << ": " << t.what;
}

TEST(HappyEyeballs, SourceAddressOfTheWrongFamilyFailsThatAttemptOnly) {
    SKIP_WITHOUT_IPV6();
    RUN_WITH_HOSTS(two_family_hosts, [] {
        const auto hosts = resolved("he.sock-test");
        ASSERT_EQ(hosts.size(), 2u);
        auto bound = same_port(hosts);
        for (auto& s : bound) s.listen(8);
        const std::uint16_t port = bound[0].getsockname().port();
        // An IPv4 source cannot bind an IPv6 socket: ::1 fails, 127.0.0.1 still connects.
        sock::socket c = sock::create_connection(sock::address("he.sock-test", port), 3s,
                                                 sock::address("127.0.0.1", 0));
        EXPECT_EQ(c.getpeername(), sock::address("127.0.0.1", port));
        EXPECT_EQ(c.getsockname().host(), "127.0.0.1");
    });
}

}  // namespace
