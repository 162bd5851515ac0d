// async_getaddrinfo and async_create_connection: names resolved off the loop, with the system's
// own configuration, bounded by timeouts and cancellation; Happy Eyeballs on the loop.
//
// Names come from private /etc files and, where DNS is needed, from a DNS server of the test's
// own on 127.0.0.1:53 inside a private network namespace: no test depends on the network.

#include "capture.hpp"
#include "private_system.hpp"
#include "silent_address.hpp"
#include "support.hpp"

#include <sock/resolve.hpp>

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using files = std::map<std::string, std::string>;

constexpr const char* two_family_hosts = "::1 he.sock-test\n127.0.0.1 he.sock-test\n";

/// The system's resolver pointed at 127.0.0.1:53 (one try, one second), hosts file first.
files with_dns(const std::string& hosts) {
    return {{"/etc/hosts", hosts},
            {"/etc/resolv.conf", "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"},
            {"/etc/nsswitch.conf", "hosts: files dns\n"}};
}

/// A DNS server on 127.0.0.1:53 (in the test's own network namespace) that answers every A
/// question with `answer`, and AAAA ones with no address; or, silent, answers nothing.
class dns_server {
public:
    explicit dns_server(bool silent, std::string answer = "127.0.0.7")
        : sock_(sock::family::inet, sock::kind::dgram), silent_(silent), answer_(std::move(answer)) {
        sock_.bind(sock::address("127.0.0.1", 53));
        sock_.settimeout(0.05);
        thread_ = std::thread([this] { serve(); });
    }
    ~dns_server() {
        done_ = true;
        thread_.join();
    }
    int questions() const { return questions_; }

private:
    void serve() {
        char buf[512];
        while (!done_) {
            std::error_code ec;
            auto [n, from] = sock_.recvfrom_into(buf, 0, ec);
            if (ec || n < 12) continue;
            ++questions_;
            if (silent_) continue;
            std::string q(buf, n);
            // The question ends after its name (labels up to a zero byte), then type and class.
            std::size_t end = 12;
            while (end < q.size() && q[end] != 0) end += 1 + static_cast<unsigned char>(q[end]);
            end += 5;
            if (end > q.size()) continue;
            const int type = (static_cast<unsigned char>(q[end - 4]) << 8) | static_cast<unsigned char>(q[end - 3]);
            std::string r = q.substr(0, end);
            r[2] = static_cast<char>(0x81);  // a response, recursion desired
            r[3] = static_cast<char>(0x80);  // recursion available, no error
            r[6] = 0;
            r[7] = type == 1 ? 1 : 0;  // answers
            r[8] = r[9] = r[10] = r[11] = 0;
            if (type == 1) {
                r += std::string("\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04", 12);
                r += sock::inet_pton(sock::family::inet, answer_);
            }
            sock_.sendto(r, from, 0, ec);
        }
    }

    sock::socket sock_;
    bool silent_;
    std::string answer_;
    std::atomic<bool> done_{false};
    std::atomic<int> questions_{0};
    std::thread thread_;
};

std::vector<std::string> hosts_of(const std::vector<sock::addrinfo>& infos) {
    std::vector<std::string> out;
    for (const auto& i : infos) out.push_back(i.addr.to_string());
    return out;
}

/// Counts the ticks of a 1 ms sleep loop until *stop: proof that the loop kept running.
sock::task<> ticker(const bool* stop, int* ticks) {
    while (!*stop) {
        co_await sock::sleep(1ms);
        ++*ticks;
    }
}

/// A listener on 127.0.0.1 with a kernel-chosen port.
sock::socket listener() { return sock::create_server(sock::address("127.0.0.1", 0)); }

std::size_t open_descriptors() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

bool has_ipv6_loopback() {
    std::error_code ec;
    sock::socket s(sock::family::inet6, sock::kind::stream);
    s.bind(sock::address("::1", 0), ec);
    return !ec;
}

/// The resolver threads of this process (they are named so; sanitizers add threads of their own).
std::size_t resolver_threads() {
    std::size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
        std::string comm;
        std::ifstream(e.path() / "comm") >> comm;
        if (comm == "sock-resolver") ++n;
    }
    return n;
}

TEST(AsyncGetaddrinfo, ANameFromTheHostsFileGivesWhatGetaddrinfoGives) {
    RUN_IN_PRIVATE_SYSTEM((files{{"/etc/hosts", two_family_hosts}}), false, [] {
        sock::event_loop loop;
        auto got = sock::run(loop, []() -> sock::task<std::vector<sock::addrinfo>> {
            co_return co_await sock::async_getaddrinfo("he.sock-test", 80);
        }());
        EXPECT_EQ(hosts_of(got), hosts_of(sock::getaddrinfo("he.sock-test", 80)));
        EXPECT_EQ(hosts_of(got), (std::vector<std::string>{"[::1]:80", "127.0.0.1:80"}));
    });
}

TEST(AsyncGetaddrinfo, ANumericHostIsAnsweredWithoutAThread) {
    // In a fresh child, so that no earlier look-up has started resolver threads.
    RUN_IN_PRIVATE_SYSTEM(files{}, false, [] {
        sock::event_loop loop;
        auto got = sock::run(loop, []() -> sock::task<std::vector<sock::addrinfo>> {
            co_return co_await sock::async_getaddrinfo("127.0.0.1", 8001, sock::family::inet);
        }());
        EXPECT_EQ(hosts_of(got), (std::vector<std::string>{"127.0.0.1:8001"}));
        EXPECT_EQ(resolver_threads(), 0u);
    });
}

TEST(AsyncGetaddrinfo, ANameOnlyDnsKnowsIsAskedOfTheConfiguredServer) {
    RUN_IN_PRIVATE_SYSTEM(with_dns(""), true, [] {
        dns_server dns(false, "127.0.0.7");
        sock::event_loop loop;
        auto got = sock::run(loop, []() -> sock::task<std::vector<sock::addrinfo>> {
            co_return co_await sock::async_getaddrinfo("only-dns.sock-test", 80, sock::family::inet);
        }());
        EXPECT_EQ(hosts_of(got), (std::vector<std::string>{"127.0.0.7:80"}));
        EXPECT_GE(dns.questions(), 1);
    });
}

TEST(AsyncGetaddrinfo, AnUnknownNameFailsAsGetaddrinfoDoes) {
    // No DNS server listens: the resolver's question is refused at once.
    RUN_IN_PRIVATE_SYSTEM(with_dns(""), true, [] {
        std::error_code blocking;
        sock::getaddrinfo("nowhere.sock-test", 80, sock::family::unspec, sock::kind::stream, 0,
                          blocking);
        ASSERT_TRUE(blocking);
        sock::event_loop loop;
        const auto t = test::capture([&] {
            sock::run(loop, []() -> sock::task<> {
                co_await sock::async_getaddrinfo("nowhere.sock-test", 80);
            }());
        });
        EXPECT_TRUE(t.is<sock::gaierror>()) << t.type_name() << " " << t.what;
        EXPECT_EQ(t.code, blocking);
        EXPECT_EQ(t.what, "getaddrinfo nowhere.sock-test:80: " + blocking.message());

        std::error_code ec;
        auto got = sock::run(loop, [](std::error_code& e) -> sock::task<std::vector<sock::addrinfo>> {
            co_return co_await sock::async_getaddrinfo("nowhere.sock-test", 80,
                                                       sock::family::unspec, sock::kind::stream,
                                                       0, std::nullopt, e);
        }(ec));
        EXPECT_EQ(ec, blocking);
        EXPECT_TRUE(got.empty());
    });
}

TEST(AsyncGetaddrinfo, TheLoopRunsWhileALookUpWaitsAndItsTimeoutEndsIt) {
    RUN_IN_PRIVATE_SYSTEM(with_dns(""), true, [] {
        dns_server dns(true);  // never answers: the look-up would take the resolver's second
        sock::event_loop loop;
        bool stop = false;
        int ticks = 0;
        const auto t = test::capture([&] {
            sock::run(loop, [](bool& stop_, int& ticks_) -> sock::task<> {
                sock::task_set others;
                others.spawn(ticker(&stop_, &ticks_));
                struct stopper {
                    bool& s;
                    ~stopper() { s = true; }
                } at_end{stop_};
                co_await sock::async_getaddrinfo("silent.sock-test", 80, sock::family::inet,
                                                 sock::kind::stream, 0, 200ms);
            }(stop, ticks));
        });
        EXPECT_TRUE(t.is<sock::timeout>()) << t.type_name() << " " << t.what;
        EXPECT_EQ(t.what, "getaddrinfo silent.sock-test:80: timed out");
        EXPECT_GT(ticks, 0);  // the loop ran other tasks while the look-up waited
        EXPECT_GE(dns.questions(), 1);
        EXPECT_EQ(loop.timers().armed, 0u);
    });
}

TEST(AsyncGetaddrinfo, CancellingTheTaskEndsTheWaitAndADroppedAnswerIsHarmless) {
    RUN_IN_PRIVATE_SYSTEM(with_dns(""), true, [] {
        dns_server dns(true);
        sock::event_loop loop;
        const auto t = test::capture([&] {
            sock::run(loop, sock::wait_for([]() -> sock::task<> {
                co_await sock::async_getaddrinfo("silent.sock-test", 80, sock::family::inet);
            }(), 100ms));
        });
        EXPECT_EQ(t.what, "wait_for: timed out");
        // The look-up's thread finishes after the resolver's one second, and its answer has no
        // one to go to: the loop keeps running, and nothing is delivered.
        sock::run(loop, []() -> sock::task<> { co_await sock::sleep(1500ms); }());
        EXPECT_EQ(loop.timers().armed, 0u);
    });
}

TEST(AsyncGetaddrinfo, AThousandConcurrentLookUpsEachGetTheirOwnAnswer) {
    std::string hosts;
    for (int i = 0; i < 1000; ++i)
        hosts += "127.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) +
                 " n" + std::to_string(i) + ".sock-test\n";
    RUN_IN_PRIVATE_SYSTEM((files{{"/etc/hosts", hosts}}), false, [] {
        sock::set_resolver_threads(4);
        sock::event_loop loop;
        auto lookup = [](int i) -> sock::task<std::string> {
            auto infos = co_await sock::async_getaddrinfo("n" + std::to_string(i) + ".sock-test",
                                                          80, sock::family::inet);
            co_return infos.size() == 1 ? infos.front().addr.host() : "?";
        };
        std::vector<sock::task<std::string>> all;
        for (int i = 0; i < 1000; ++i) all.push_back(lookup(i));
        auto got = sock::run(loop, sock::when_all(std::move(all)));
        ASSERT_EQ(got.size(), 1000u);
        for (int i = 0; i < 1000; ++i)
            EXPECT_EQ(got[static_cast<std::size_t>(i)],
                      "127.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1));
        EXPECT_LE(resolver_threads(), 4u);
        EXPECT_GE(resolver_threads(), 1u);
    });
}

TEST(AsyncGetaddrinfo, BadArgumentsAreTheCallersError) {
    EXPECT_THROW(sock::async_getaddrinfo("x", 80, sock::family::unspec, sock::kind::stream, 0, -1s),
                 std::invalid_argument);
    EXPECT_THROW(sock::set_resolver_threads(0), std::invalid_argument);
}

// ---------------------------------------------------------------- async_create_connection

sock::task<sock::address> connect_and_name(sock::address to, sock::timeout_t timeout,
                                           sock::timeout_t delay = sock::default_happy_eyeballs_delay) {
    auto conn = co_await sock::async_create_connection(std::move(to), timeout, std::nullopt, delay);
    co_return conn.raw().getpeername();
}

TEST(AsyncCreateConnection, ANameConnectsAndTheTimeoutBecomesTheSocketsOwn) {
    RUN_IN_PRIVATE_SYSTEM((files{{"/etc/hosts", "127.0.0.1 one.sock-test\n"}}), false, [] {
        auto l = listener();
        const auto port = l.getsockname().port();
        sock::event_loop loop;
        auto conn = sock::run(loop, sock::async_create_connection({"one.sock-test", port}, 3s));
        EXPECT_EQ(conn.raw().getpeername(), sock::address("127.0.0.1", port));
        EXPECT_EQ(conn.gettimeout(), sock::timeout_t(3s));
        EXPECT_EQ(conn.loop(), &loop);
    });
}

TEST(AsyncCreateConnection, ASilentFirstAddressDoesNotHoldUpTheSecond) {
    if (!has_ipv6_loopback()) GTEST_SKIP() << "no [::1] here";
    RUN_IN_PRIVATE_SYSTEM((files{{"/etc/hosts", two_family_hosts}}), false, [] {
        test::silent_first setup("he.sock-test");
        sock::event_loop loop;
        // One at a time, the first address would take the whole three seconds.
        auto peer = sock::run(loop, connect_and_name({"he.sock-test", setup.port}, 3s));
        EXPECT_EQ(peer, sock::address(setup.second, setup.port));
        const auto t = test::capture([&] {
            sock::run(loop, connect_and_name({"he.sock-test", setup.port}, 300ms, std::nullopt));
        });
        EXPECT_TRUE(t.is<sock::timeout>()) << t.type_name() << " " << t.what;
    });
}

TEST(AsyncCreateConnection, WhenAllFailTheErrorNamesEveryAddress) {
    RUN_IN_PRIVATE_SYSTEM((files{{"/etc/hosts", "127.0.0.1 two.sock-test\n127.0.0.2 two.sock-test\n"}}),
                          false, [] {
        auto refusing = test::same_port({"127.0.0.1", "127.0.0.2"});
        const auto port = refusing[0].getsockname().port();
        sock::event_loop loop;
        const auto t = test::capture([&] {
            sock::run(loop, connect_and_name({"two.sock-test", port}, 3s));
        });
        const std::string p = std::to_string(port);
        EXPECT_TRUE(t.is<sock::error>()) << t.type_name();
        EXPECT_EQ(t.what, "connect two.sock-test:" + p + ": 127.0.0.1:" + p +
                              ": Connection refused; 127.0.0.2:" + p + ": Connection refused");
        EXPECT_EQ(t.code, std::errc::connection_refused);
    });
}

TEST(AsyncCreateConnection, CancellingStopsEveryAttempt) {
    if (!has_ipv6_loopback()) GTEST_SKIP() << "no [::1] here";
    RUN_IN_PRIVATE_SYSTEM((files{{"/etc/hosts", "::1 s.sock-test\n"}}), false, [] {
        auto hosts = test::resolved("s.sock-test");
        auto bound = test::same_port(hosts);
        auto queued = test::fill_queue(bound[0]);
        ASSERT_FALSE(queued.empty());
        const auto port = bound[0].getsockname().port();
        sock::event_loop loop;
        const auto before = open_descriptors();
        const auto t = test::capture([&] {
            sock::run(loop, sock::wait_for(connect_and_name({"s.sock-test", port}, std::nullopt), 100ms));
        });
        EXPECT_EQ(t.what, "wait_for: timed out");
        EXPECT_EQ(open_descriptors(), before);  // the attempt's socket is closed
        EXPECT_EQ(loop.watched(), 0u);
        EXPECT_EQ(loop.timers().armed, 0u);
    });
}

TEST(AsyncCreateConnection, NumericAndUnixAddressesNeedNoName) {
    sock::event_loop loop;
    auto l = listener();
    auto peer = sock::run(loop, connect_and_name(l.getsockname(), 3s));
    EXPECT_EQ(peer, l.getsockname());

    test::temp_dir dir;
    const sock::address path = sock::address::unix_path(dir.file("s"));
    auto u = sock::create_server(path);
    auto conn = sock::run(loop, sock::async_create_connection(path, 3s));
    EXPECT_TRUE(conn);

    const auto t = test::capture([&] {
        sock::run(loop, sock::async_create_connection(sock::address::unix_path(dir.file("none")), 3s));
    });
    EXPECT_EQ(t.code, std::errc::no_such_file_or_directory);
    EXPECT_EQ(t.what, "connect " + dir.file("none") + ": No such file or directory");
}

}  // namespace
