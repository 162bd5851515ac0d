// The server under a service manager: listening sockets it inherits (socket activation, or a
// socket held across restarts) and the notifications it sends (READY, STATUS, STOPPING,
// WATCHDOG) to a datagram socket of the test's own standing in for $NOTIFY_SOCKET.

#include "support.hpp"

#include "scoped_env.hpp"

#include <sock/systemd.hpp>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using engine_test::ask;
using engine_test::echo_hi;
using engine_test::server_thread;
using engine_test::test_config;
using test::scoped_env;

/// A listening socket as a service manager holds it: the test keeps it, servers get copies.
sock::socket held_listener() {
    sock::socket s(sock::family::inet, sock::kind::stream);
    s.bind({"127.0.0.1", 0});
    s.listen(64);
    return s;
}

sock::server_config inherited_config(std::vector<sock::socket> sockets, unsigned threads) {
    auto c = test_config({}, threads);
    c.inherited = std::move(sockets);
    c.notify = false;
    return c;
}

std::vector<sock::socket> one(sock::socket s) {
    std::vector<sock::socket> v;
    v.push_back(std::move(s));
    return v;
}

TEST(ServerInherited, OneListenerServesEveryLoop) {
    auto held = held_listener();
    server_thread srv(inherited_config(one(held.dup()), 2), echo_hi);
    ASSERT_EQ(srv->addresses().size(), 1u);
    EXPECT_EQ(srv.address(), held.getsockname());
    for (int i = 0; i < 50; ++i) EXPECT_EQ(ask(srv.address(), std::to_string(i)), "hi:" + std::to_string(i));
    EXPECT_EQ(srv->accepted(), 50u);
}

TEST(ServerInherited, ServesBesidesItsOwnAddresses) {
    auto held = held_listener();
    auto config = inherited_config(one(held.dup()), 2);
    config.listen = {sock::address("127.0.0.1", 0)};
    server_thread srv(std::move(config), echo_hi);
    ASSERT_EQ(srv->addresses().size(), 2u);
    EXPECT_EQ(srv.address(1), held.getsockname());
    EXPECT_EQ(ask(srv.address(0), "own"), "hi:own");
    EXPECT_EQ(ask(srv.address(1), "inherited"), "hi:inherited");
}

// What a restart under systemd does: the first server stops, clients keep connecting to the
// socket the manager holds, and the next server answers them all.
TEST(ServerInherited, ClientsQueuedBetweenTwoServersAreServedByTheSecond) {
    auto held = held_listener();
    const auto where = held.getsockname();
    {
        server_thread first(inherited_config(one(held.dup()), 2), echo_hi);
        EXPECT_EQ(ask(where, "first"), "hi:first");
        first->stop();
        ASSERT_TRUE(first.finished_within(20s));
    }
    std::vector<sock::socket> waiting;
    for (int i = 0; i < 5; ++i) {
        waiting.push_back(engine_test::connect_to(where));  // queued: nobody accepts now
        waiting.back().sendall("q" + std::to_string(i));
    }
    server_thread second(inherited_config(one(held.dup()), 2), echo_hi);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(waiting[i].recv(100), "hi:q" + std::to_string(i));
    waiting.clear();  // gone before the server stops, which then needs no grace
}

std::string construction_error(sock::server_config config) {
    try {
        sock::server s(std::move(config), echo_hi);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "<no error>";
}

TEST(ServerInherited, ASocketOfTheWrongKindIsOneClearError) {
    sock::socket udp(sock::family::inet, sock::kind::dgram);
    udp.bind({"127.0.0.1", 0});
    const std::string udp_name = udp.getsockname().to_string();
    const std::string udp_fd = std::to_string(udp.fileno());
    EXPECT_EQ(construction_error(inherited_config(one(std::move(udp)), 1)),
              "server: inherited fd " + udp_fd + " (" + udp_name +
                  ") is a datagram socket; this server serves stream sockets");

    sock::socket bound(sock::family::inet, sock::kind::stream);
    bound.bind({"127.0.0.1", 0});
    const std::string bound_name = bound.getsockname().to_string();
    const std::string bound_fd = std::to_string(bound.fileno());
    EXPECT_EQ(construction_error(inherited_config(one(std::move(bound)), 1)),
              "server: inherited fd " + bound_fd + " (" + bound_name + ") is not listening");

    auto tcp = held_listener();
    auto dgram = inherited_config(one(tcp.dup()), 1);
    dgram.type = sock::kind::dgram;
    EXPECT_NE(construction_error(std::move(dgram)).find("is a stream socket; this server serves datagram sockets"),
              std::string::npos);
}

TEST(ServerInherited, DatagramSocketsAreServedToo) {
    sock::socket udp(sock::family::inet, sock::kind::dgram);
    udp.bind({"127.0.0.1", 0});
    const auto where = udp.getsockname();
    auto config = inherited_config(one(std::move(udp)), 2);
    config.type = sock::kind::dgram;
    server_thread srv(std::move(config), [](sock::async_socket s) -> sock::task<> {
        std::error_code ec;
        char buf[100];
        for (;;) {
            auto [n, from] = co_await s.recvfrom_into(buf, ec);
            if (ec) co_return;
            co_await s.sendto("hi:" + std::string(buf, n), from, ec);
        }
    });
    sock::socket client(sock::family::inet, sock::kind::dgram);
    client.settimeout(engine_test::client_timeout);
    client.sendto("d", where);
    EXPECT_EQ(client.recvfrom(100).first, "hi:d");
}

// -- notifications -----------------------------------------------------------------------------

/// The service manager's end: an abstract datagram socket named in $NOTIFY_SOCKET.
class manager {
public:
    manager() : name_("@sock-engine-notify-" + std::to_string(::getpid())) {
        s_.bind(sock::address::unix_path(name_));
        s_.settimeout(engine_test::client_timeout);
    }
    const std::string& name() const { return name_; }
    /// Datagrams until one contains `want`; all of them, that one last. Throws on a timeout.
    std::vector<std::string> until(const std::string& want) {
        std::vector<std::string> got;
        do got.push_back(s_.recv(4096));
        while (got.back().find(want) == std::string::npos);
        return got;
    }

private:
    std::string name_;
    sock::socket s_{sock::family::local, sock::kind::dgram};
};

TEST(ServerNotify, OnByDefaultOnlyUnderAServiceManager) {
    {
        scoped_env env("NOTIFY_SOCKET", std::nullopt);
        EXPECT_FALSE(sock::server_config{}.notify);
    }
    scoped_env env("NOTIFY_SOCKET", "/run/systemd/notify");
    EXPECT_TRUE(sock::server_config{}.notify);
}

TEST(ServerNotify, ReadyStatusWatchdogAndStopping) {
    manager m;
    scoped_env notify_socket("NOTIFY_SOCKET", m.name());
    scoped_env usec("WATCHDOG_USEC", "200000");  // a ping every 100 ms
    scoped_env pid("WATCHDOG_PID", std::nullopt);
    auto config = test_config({sock::address("127.0.0.1", 0)}, 2);
    ASSERT_TRUE(config.notify);
    std::optional<server_thread> srv;
    srv.emplace(std::move(config), echo_hi);

    auto got = m.until("READY=1");
    EXPECT_EQ(got.back(), "READY=1\nSTATUS=0 connection(s) open, 0 accepted since the start");
    // Every loop answers the watchdog's rounds, so the pings go on.
    for (int i = 0; i < 3; ++i) EXPECT_EQ(m.until("WATCHDOG=1").back(), "WATCHDOG=1");
    EXPECT_EQ(ask(srv->address(), "x"), "hi:x");
    EXPECT_EQ(m.until("STATUS=0 connection(s) open, 1 accepted").back(),
              "STATUS=0 connection(s) open, 1 accepted since the start");
    (*srv)->stop();
    EXPECT_EQ(m.until("STOPPING=1").back(),
              "STOPPING=1\nSTATUS=stopping: 0 connection(s) open, 1 accepted since the start");
    srv.reset();
}

TEST(ServerNotify, AGarbageWatchdogIntervalIsAnError) {
    scoped_env notify_socket("NOTIFY_SOCKET", "@sock-engine-nobody");
    scoped_env usec("WATCHDOG_USEC", "soon");
    scoped_env pid("WATCHDOG_PID", std::nullopt);
    EXPECT_EQ(construction_error(test_config({sock::address("127.0.0.1", 0)})),
              "WATCHDOG_USEC=soon: not a number of microseconds above 0 (watchdog)");
}

// Notifications that cannot be sent are logged once, and the server serves on.
TEST(ServerNotify, AManagerThatIsGoneIsLoggedOnce) {
    scoped_env notify_socket("NOTIFY_SOCKET", "@sock-engine-nobody-" + std::to_string(::getpid()));
    scoped_env usec("WATCHDOG_USEC", std::nullopt);
    std::mutex m;
    std::vector<std::string> lines;
    auto config = test_config({sock::address("127.0.0.1", 0)}, 1);
    config.log = [&](std::string_view line) {
        std::lock_guard lock(m);
        lines.emplace_back(line);
    };
    {
        server_thread srv(std::move(config), echo_hi);
        EXPECT_EQ(ask(srv.address(), "still"), "hi:still");
    }
    std::lock_guard lock(m);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0], "notify READY=1 to @sock-engine-nobody-" + std::to_string(::getpid()) +
                            ": Connection refused (logged again only after one goes through)");
}

}  // namespace
