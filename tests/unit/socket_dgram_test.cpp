// Datagram sockets: sendto/recvfrom keep message boundaries; a datagram longer than the
// buffer is truncated and its rest discarded, never delivered to the next call.

#include "support.hpp"

#include <array>
#include <string>

namespace {

struct udp_pair {
    sock::socket server;
    sock::socket client;
    sock::address server_name;
    sock::address client_name;
};

udp_pair udp_v4() {
    udp_pair p{sock::socket(sock::family::inet, sock::kind::dgram),
               sock::socket(sock::family::inet, sock::kind::dgram), {}, {}};
    p.server.bind(sock::address("127.0.0.1", 0));
    p.client.bind(sock::address("127.0.0.1", 0));
    p.server_name = p.server.getsockname();
    p.client_name = p.client.getsockname();
    return p;
}

TEST(Dgram, BoundariesAreKept) {
    auto p = udp_v4();
    p.client.sendto("one", p.server_name);
    p.client.sendto("two!", p.server_name);
    p.client.sendto("three", p.server_name);
    EXPECT_EQ(p.server.recvfrom(100).first, "one");
    EXPECT_EQ(p.server.recvfrom(100).first, "two!");
    EXPECT_EQ(p.server.recvfrom(100).first, "three");
}

TEST(Dgram, TruncatedRestIsDiscardedInet) {
    auto p = udp_v4();
    EXPECT_EQ(p.client.sendto("0123456789", p.server_name), 10u);
    EXPECT_EQ(p.client.sendto("next", p.server_name), 4u);
    auto [first, from1] = p.server.recvfrom(4);
    EXPECT_EQ(first, "0123");
    EXPECT_EQ(from1, p.client_name);
    auto [second, from2] = p.server.recvfrom(100);
    EXPECT_EQ(second, "next");
    EXPECT_EQ(from2, p.client_name);
}

TEST(Dgram, TruncatedRestIsDiscardedUnixPath) {
    test::temp_dir dir;
    const auto server_name = sock::address::unix_path(dir.file("server"));
    const auto client_name = sock::address::unix_path(dir.file("client"));
    sock::socket server(sock::family::local, sock::kind::dgram);
    server.bind(server_name);
    sock::socket client(sock::family::local, sock::kind::dgram);
    client.bind(client_name);

    EXPECT_EQ(client.sendto("0123456789", server_name), 10u);
    EXPECT_EQ(client.sendto("ab", server_name), 2u);
    auto [first, from1] = server.recvfrom(4);
    EXPECT_EQ(first, "0123");
    EXPECT_EQ(from1, client_name);
    EXPECT_EQ(from1.path(), dir.file("client"));
    auto [second, from2] = server.recvfrom(100);
    EXPECT_EQ(second, "ab");

    // The bound client path is where replies go.
    EXPECT_EQ(server.sendto("reply", from1), 5u);
    auto [reply, replier] = client.recvfrom(100);
    EXPECT_EQ(reply, "reply");
    EXPECT_EQ(replier, server_name);
}

TEST(Dgram, RecvOnDgramTruncatesToo) {
    auto [a, b] = sock::socketpair(sock::family::local, sock::kind::dgram);
    a.send("0123456789");
    a.send("xyz");
    EXPECT_EQ(b.recv(4), "0123");
    EXPECT_EQ(b.recv(100), "xyz");
}

TEST(Dgram, RecvfromIntoTruncates) {
    auto p = udp_v4();
    p.client.sendto("0123456789", p.server_name);
    p.client.sendto("tail", p.server_name);
    std::array<char, 4> small{};
    auto [n, from] = p.server.recvfrom_into(std::span<char>(small));
    EXPECT_EQ(n, 4u);
    EXPECT_EQ(std::string(small.data(), 4), "0123");
    EXPECT_EQ(from, p.client_name);

    std::array<char, 64> big{};
    auto [m, from2] = p.server.recvfrom_into(std::span<char>(big));
    EXPECT_EQ(m, 4u);
    EXPECT_EQ(std::string(big.data(), m), "tail");
    EXPECT_EQ(from2, p.client_name);
}

TEST(Dgram, EmptyDatagram) {
    auto p = udp_v4();
    EXPECT_EQ(p.client.sendto("", p.server_name), 0u);
    p.client.sendto("after", p.server_name);
    auto [data, from] = p.server.recvfrom(100);
    EXPECT_EQ(data, "");
    EXPECT_EQ(from, p.client_name);
    EXPECT_EQ(p.server.recvfrom(100).first, "after");
}

TEST(Dgram, BinaryPayloadIsKept) {
    auto p = udp_v4();
    const std::string payload("\0\x01\x02\xff\0end", 7);
    p.client.sendto(payload, p.server_name);
    auto [data, from] = p.server.recvfrom(100);
    EXPECT_EQ(data, payload);
}

TEST(Dgram, SendtoResolvesLocalhost) {
    auto p = udp_v4();
    p.client.sendto("by name", sock::address("localhost", p.server_name.port()));
    auto [data, from] = p.server.recvfrom(100);
    EXPECT_EQ(data, "by name");
    EXPECT_EQ(from, p.client_name);
}

TEST(Dgram, UnboundUnixSenderHasUnnamedAddress) {
    test::temp_dir dir;
    const auto server_name = sock::address::unix_path(dir.file("server"));
    sock::socket server(sock::family::local, sock::kind::dgram);
    server.bind(server_name);
    sock::socket client(sock::family::local, sock::kind::dgram);
    client.sendto("anon", server_name);
    auto [data, from] = server.recvfrom(100);
    EXPECT_EQ(data, "anon");
    // The sender has no name: Python says None; here an unnamed (empty) address.
    EXPECT_EQ(from.path(), "");
    EXPECT_EQ(from.port(), 0);
}

TEST(Dgram, AbstractNames) {
    const auto server_name = sock::address::unix_path(test::abstract_name("srv"));
    const auto client_name = sock::address::unix_path(test::abstract_name("cli"));
    sock::socket server(sock::family::local, sock::kind::dgram);
    server.bind(server_name);
    sock::socket client(sock::family::local, sock::kind::dgram);
    client.bind(client_name);
    client.sendto("hi", server_name);
    auto [data, from] = server.recvfrom(100);
    EXPECT_EQ(data, "hi");
    EXPECT_EQ(from, client_name);
    EXPECT_EQ(from.to_string(), client_name.to_string());
    EXPECT_EQ(from.to_string()[0], '@');
}

TEST(Dgram, SendtoUnixPathWithoutListenerFails) {
    test::temp_dir dir;
    sock::socket client(sock::family::local, sock::kind::dgram);
    const auto nobody = sock::address::unix_path(dir.file("nobody"));
    auto t = test::capture([&] { client.sendto("x", nobody); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name();
    EXPECT_EQ(t.code, std::errc::no_such_file_or_directory);
    EXPECT_TRUE(test::starts_with(t.what, "sendto")) << t.what;
}

}  // namespace
