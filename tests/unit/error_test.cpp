// sock::error, sock::timeout, sock::gaierror: what they say, what they are, and the
// error_code overloads that report instead of throwing.

#include "support.hpp"

#include <netdb.h>

#include <string>
#include <system_error>
#include <type_traits>

namespace {

using test::capture;

static_assert(std::is_base_of_v<std::system_error, sock::error>);
static_assert(std::is_base_of_v<sock::error, sock::timeout>);
static_assert(std::is_base_of_v<sock::error, sock::gaierror>);
static_assert(!std::is_base_of_v<sock::timeout, sock::gaierror>);

TEST(Error, WhatIsContextColonMessage) {
    sock::error e(std::make_error_code(std::errc::connection_refused), "connect 127.0.0.1:9");
    EXPECT_STREQ(e.what(), "connect 127.0.0.1:9: Connection refused");
    EXPECT_EQ(e.code(), std::errc::connection_refused);
}

TEST(Error, CaughtAsSystemErrorKeepsCodeAndWhat) {
    auto t = capture([] {
        throw sock::error(std::error_code(EADDRINUSE, std::system_category()), "bind 127.0.0.1:1");
    });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name();
    EXPECT_EQ(t.what, "bind 127.0.0.1:1: Address already in use");
    EXPECT_EQ(t.code, std::errc::address_in_use);
}

TEST(Error, BindSamePortTwiceNamesCallAddressAndCause) {
    sock::socket first(sock::family::inet, sock::kind::stream);
    first.bind(sock::address("127.0.0.1", 0));
    first.listen(1);
    const std::uint16_t port = first.getsockname().port();
    ASSERT_NE(port, 0);

    sock::socket second(sock::family::inet, sock::kind::stream);
    auto t = capture([&] { second.bind(sock::address("127.0.0.1", port)); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name() << ": " << t.what;
    EXPECT_EQ(t.what, "bind 127.0.0.1:" + std::to_string(port) + ": Address already in use");
    EXPECT_EQ(t.code, std::errc::address_in_use);
}

TEST(Error, BindSamePortTwiceErrorCodeFormDoesNotThrow) {
    sock::socket first = test::listener_v4(1);
    const std::uint16_t port = first.getsockname().port();

    sock::socket second(sock::family::inet, sock::kind::stream);
    std::error_code ec;
    EXPECT_NO_THROW(second.bind(sock::address("127.0.0.1", port), ec));
    EXPECT_EQ(ec, std::errc::address_in_use);
}

TEST(Timeout, IsErrorAndSystemErrorWithTimedOut) {
    auto t = capture([] { throw sock::timeout("recv 127.0.0.1:5"); });
    ASSERT_TRUE(t.is<sock::timeout>()) << t.type_name();
    EXPECT_EQ(t.code, std::errc::timed_out);
    EXPECT_EQ(t.what, "recv 127.0.0.1:5: timed out");

    bool as_error = false;
    bool as_system_error = false;
    try {
        throw sock::timeout("accept 127.0.0.1:5");
    } catch (const sock::error& e) {
        as_error = true;
        EXPECT_TRUE(test::ends_with(e.what(), "timed out")) << e.what();
    }
    try {
        throw sock::timeout("accept 127.0.0.1:5");
    } catch (const std::system_error& e) {
        as_system_error = true;
        EXPECT_EQ(e.code(), std::errc::timed_out);
    }
    EXPECT_TRUE(as_error);
    EXPECT_TRUE(as_system_error);
}

TEST(Timeout, TimeoutErrorIsTimedOut) {
    EXPECT_EQ(sock::timeout_error(), std::errc::timed_out);
    EXPECT_EQ(sock::timeout_error(), std::make_error_code(std::errc::timed_out));
}

TEST(Timeout, KernelEtimedoutReadsTimedOut) {
    sock::timeout t(std::error_code(ETIMEDOUT, std::system_category()), "connect 127.0.0.1:7");
    EXPECT_STREQ(t.what(), "connect 127.0.0.1:7: timed out");
    EXPECT_EQ(t.code(), std::errc::timed_out);
}

TEST(ThrowError, PicksTimeoutForTimedOut) {
    auto ours = capture([] { sock::throw_error(sock::timeout_error(), "recv x"); });
    EXPECT_TRUE(ours.is<sock::timeout>()) << ours.type_name();
    EXPECT_EQ(ours.what, "recv x: timed out");

    auto kernel =
        capture([] { sock::throw_error(std::error_code(ETIMEDOUT, std::system_category()), "c"); });
    EXPECT_TRUE(kernel.is<sock::timeout>()) << kernel.type_name();
    EXPECT_EQ(kernel.code, std::errc::timed_out);
}

TEST(ThrowError, PicksGaierrorForGaiCategory) {
    auto t = capture(
        [] { sock::throw_error(std::error_code(EAI_NONAME, sock::gai_category()), "resolve h"); });
    ASSERT_TRUE(t.is<sock::gaierror>()) << t.type_name();
    EXPECT_EQ(t.code, std::error_code(EAI_NONAME, sock::gai_category()));
    EXPECT_EQ(t.what, std::string("resolve h: ") + ::gai_strerror(EAI_NONAME));
}

TEST(ThrowError, PicksPlainErrorOtherwise) {
    auto t = capture([] {
        sock::throw_error(std::error_code(ECONNREFUSED, std::system_category()), "connect y");
    });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name();
    EXPECT_EQ(t.what, "connect y: Connection refused");
    EXPECT_EQ(t.code, std::errc::connection_refused);
}

TEST(Gaierror, CategoryMessageIsGaiStrerror) {
    const std::error_category& cat = sock::gai_category();
    EXPECT_EQ(&cat, &sock::gai_category());
    for (int code : {EAI_NONAME, EAI_AGAIN, EAI_FAIL, EAI_FAMILY, EAI_SERVICE}) {
        EXPECT_EQ(cat.message(code), ::gai_strerror(code)) << code;
    }
    EXPECT_NE(&cat, &std::system_category());
    EXPECT_NE(&cat, &std::generic_category());
}

TEST(Gaierror, ConstructorUsesGaiCategory) {
    sock::gaierror e(EAI_NONAME, "getaddrinfo nowhere:80");
    EXPECT_EQ(e.code().category(), sock::gai_category());
    EXPECT_EQ(e.code().value(), EAI_NONAME);
    EXPECT_EQ(std::string(e.what()),
              std::string("getaddrinfo nowhere:80: ") + ::gai_strerror(EAI_NONAME));
}

TEST(Gaierror, UnknownHostThrowsGaierror) {
    auto t = capture([] { sock::getaddrinfo("no-such-host.invalid", 80); });
    ASSERT_TRUE(t.is<sock::gaierror>()) << t.type_name() << ": " << t.what;
    EXPECT_EQ(t.code.category(), sock::gai_category());
    // .invalid never resolves; a resolver that cannot be reached says EAI_AGAIN instead.
    EXPECT_TRUE(t.code.value() == EAI_NONAME || t.code.value() == EAI_AGAIN) << t.code.value();
    EXPECT_EQ(t.code.message(), ::gai_strerror(t.code.value()));
    EXPECT_TRUE(test::ends_with(t.what, std::string(": ") + ::gai_strerror(t.code.value())))
        << t.what;
    EXPECT_NE(t.what.find("no-such-host.invalid"), std::string::npos) << t.what;
}

TEST(Gaierror, UnknownHostErrorCodeFormReturnsEmpty) {
    std::error_code ec;
    std::vector<sock::addrinfo> result;
    EXPECT_NO_THROW(result = sock::getaddrinfo("no-such-host.invalid", 80, sock::family::unspec,
                                               sock::kind::stream, 0, ec));
    EXPECT_TRUE(result.empty());
    ASSERT_TRUE(ec);
    EXPECT_EQ(ec.category(), sock::gai_category());
}

// -- error_code overloads: they report through ec and never throw ---------------------------

TEST(ErrorCodeForms, ConnectRefusedSetsEc) {
    sock::socket refusing = test::refusing_v4();
    sock::socket c(sock::family::inet, sock::kind::stream);
    std::error_code ec;
    EXPECT_NO_THROW(c.connect(refusing.getsockname(), ec));
    EXPECT_EQ(ec, std::errc::connection_refused);
}

TEST(ErrorCodeForms, SuccessClearsEc) {
    sock::socket l = test::listener_v4();
    sock::socket c(sock::family::inet, sock::kind::stream);
    std::error_code ec = std::make_error_code(std::errc::io_error);
    c.connect(l.getsockname(), ec);
    EXPECT_FALSE(ec) << ec.message();

    ec = std::make_error_code(std::errc::io_error);
    auto [conn, peer] = l.accept(ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_TRUE(conn);
    EXPECT_EQ(peer, c.getsockname());

    ec = std::make_error_code(std::errc::io_error);
    EXPECT_EQ(c.send("abc", 0, ec), 3u);
    EXPECT_FALSE(ec);
    ec = std::make_error_code(std::errc::io_error);
    EXPECT_EQ(conn.recv(10, 0, ec), "abc");
    EXPECT_FALSE(ec);
}

TEST(ErrorCodeForms, AcceptOnNonListeningSocketSetsEinval) {
    sock::socket s(sock::family::inet, sock::kind::stream);
    s.bind(sock::address("127.0.0.1", 0));
    std::error_code ec;
    std::pair<sock::socket, sock::address> result{sock::socket::invalid(), sock::address()};
    EXPECT_NO_THROW(result = s.accept(ec));
    EXPECT_EQ(ec, std::errc::invalid_argument);
    EXPECT_FALSE(result.first);
}

TEST(ErrorCodeForms, UnconnectedStreamSetsNotConnected) {
    // A fresh socket per call: shutdown marks the socket shut even when it fails.
    std::error_code ec;
    {
        sock::socket s(sock::family::inet, sock::kind::stream);
        EXPECT_NO_THROW(s.getpeername(ec));
        EXPECT_EQ(ec, std::errc::not_connected);
    }
    {
        sock::socket s(sock::family::inet, sock::kind::stream);
        ec.clear();
        std::string data = "unchanged";
        EXPECT_NO_THROW(data = s.recv(10, 0, ec));
        EXPECT_EQ(ec, std::errc::not_connected);
        EXPECT_EQ(data, "");
    }
    {
        sock::socket s(sock::family::inet, sock::kind::stream);
        ec.clear();
        char buf[8];
        std::size_t n = 99;
        EXPECT_NO_THROW(n = s.recv_into(std::span<char>(buf), 0, ec));
        EXPECT_EQ(ec, std::errc::not_connected);
        EXPECT_EQ(n, 0u);
    }
    {
        sock::socket s(sock::family::inet, sock::kind::stream);
        ec.clear();
        EXPECT_NO_THROW(s.shutdown(sock::shut::rdwr, ec));
        EXPECT_EQ(ec, std::errc::not_connected);
    }
}

TEST(ErrorCodeForms, ClosedSocketSetsBadDescriptor) {
    sock::socket s(sock::family::inet, sock::kind::stream);
    s.close();
    std::error_code ec;
    EXPECT_NO_THROW(s.bind(sock::address("127.0.0.1", 0), ec));
    EXPECT_EQ(ec, std::errc::bad_file_descriptor);
    ec.clear();
    EXPECT_NO_THROW(s.listen(1, ec));
    EXPECT_EQ(ec, std::errc::bad_file_descriptor);
    ec.clear();
    EXPECT_NO_THROW(s.getsockname(ec));
    EXPECT_EQ(ec, std::errc::bad_file_descriptor);
    ec.clear();
    EXPECT_EQ(s.send("x", 0, ec), 0u);
    EXPECT_EQ(ec, std::errc::bad_file_descriptor);
    ec.clear();
    EXPECT_EQ(s.sendall("xyz", 0, ec), 0u);
    EXPECT_EQ(ec, std::errc::bad_file_descriptor);
    ec.clear();
    int one = 1;
    EXPECT_NO_THROW(s.setsockopt(SOL_SOCKET, SO_REUSEADDR, &one, sizeof one, ec));
    EXPECT_EQ(ec, std::errc::bad_file_descriptor);
}

TEST(ErrorCodeForms, ThrowingFormsOnClosedSocketThrowSockError) {
    sock::socket s(sock::family::inet, sock::kind::stream);
    s.close();
    auto t = capture([&] { s.listen(1); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name();
    EXPECT_EQ(t.code, std::errc::bad_file_descriptor);
    EXPECT_TRUE(test::starts_with(t.what, "listen")) << t.what;
    EXPECT_TRUE(test::ends_with(t.what, ": Bad file descriptor")) << t.what;
}

TEST(ErrorCodeForms, SendtoRecvfromReportThroughEc) {
    sock::socket u(sock::family::inet, sock::kind::dgram);
    u.bind(sock::address("127.0.0.1", 0));
    u.setblocking(false);
    std::error_code ec;
    std::pair<std::string, sock::address> got;
    EXPECT_NO_THROW(got = u.recvfrom(16, 0, ec));
    EXPECT_TRUE(ec == std::errc::resource_unavailable_try_again ||
                ec == std::errc::operation_would_block)
        << ec.message();
    EXPECT_EQ(got.first, "");

    ec.clear();
    char buf[4];
    EXPECT_NO_THROW(u.recvfrom_into(std::span<char>(buf), 0, ec));
    EXPECT_TRUE(ec == std::errc::resource_unavailable_try_again ||
                ec == std::errc::operation_would_block)
        << ec.message();

    // An IPv6 destination on an IPv4 socket.
    ec.clear();
    EXPECT_NO_THROW(u.sendto("x", sock::address("::1", 9), 0, ec));
    EXPECT_TRUE(ec) << "sendto an inet6 address from an inet socket must fail";
}

}  // namespace
