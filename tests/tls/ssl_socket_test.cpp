// sock::ssl with blocking sockets: our client against our server on 127.0.0.1, certificates
// from scripts/make-test-certs.sh. Handshakes, verification failures in words, mutual TLS,
// ALPN, resumption, timeouts, the ends of a stream, and what must never happen (SIGPIPE,
// stale errors, hangs).

#include "support.hpp"

#include "capture.hpp"

#include <sock/stream.hpp>

#include <signal.h>

#include <atomic>

namespace {

using namespace tls_test;
using test::capture;
namespace ssl = sock::ssl;

std::string port_of(const sock::socket& l) { return std::to_string(l.getsockname().port()); }

// -- handshake and data -------------------------------------------------------------------

TEST(SslSocket, EchoBothWaysAndWhatWasAgreed) {
    auto l = listener();
    auto server = serve(l, server_context(), [](ssl::socket& s) {
        EXPECT_TRUE(s.server_side());
        EXPECT_EQ(s.version(), "TLSv1.3");
        echo(s);
    });
    auto tls = client_context().wrap_socket(connect_to(l), {.server_hostname = "localhost"});
    EXPECT_EQ(tls.version(), "TLSv1.3");
    EXPECT_FALSE(tls.cipher().name.empty());
    EXPECT_GT(tls.cipher().bits, 0);
    EXPECT_EQ(tls.server_hostname(), "localhost");
    auto cert = tls.getpeercert();
    ASSERT_TRUE(cert);
    EXPECT_EQ(cert->subject, "CN=localhost");
    EXPECT_EQ(cert->issuer, "CN=sock test CA");
    EXPECT_NE(std::find(cert->subject_alt_names.begin(), cert->subject_alt_names.end(),
                        "IP Address:127.0.0.1"), cert->subject_alt_names.end());
    EXPECT_FALSE(cert->der.empty());

    tls.sendall("hello");
    EXPECT_EQ(tls.recv(100), "hello");
    // Bulk, both ways: many records, a piece at a time (one thread per socket, as OpenSSL needs).
    const auto big = pattern(3 << 20);
    std::string back;
    for (std::size_t at = 0; at < big.size(); at += 1 << 16) {
        tls.sendall(std::string_view(big).substr(at, 1 << 16));
        while (back.size() < std::min(big.size(), at + (1 << 16))) back += tls.recv(1 << 16);
    }
    EXPECT_TRUE(back == big);
    tls.close();
    EXPECT_EQ(server.get(), "");
}

// do_handshake_on_connect false: the first call makes the handshake, whichever it is.
TEST(SslSocket, AHandshakeLeftToTheFirstCallIsMadeByIt) {
    for (const bool first_is_send : {true, false}) {
        auto l = listener();
        auto server = serve(l, server_context(), [](ssl::socket& s) {
            s.sendall("hi");
            echo(s);
        });
        auto tls = client_context().wrap_socket(
            connect_to(l), {.server_hostname = "localhost", .do_handshake_on_connect = false});
        EXPECT_EQ(tls.version(), "") << "the handshake ran before the first call";
        if (first_is_send) {
            tls.sendall("x");
            EXPECT_EQ(tls.recv(2), "hi");
        } else {
            EXPECT_EQ(tls.recv(2), "hi");
            tls.sendall("x");
        }
        EXPECT_EQ(tls.version(), "TLSv1.3");
        EXPECT_EQ(tls.recv(100), "x");
        tls.close();
        EXPECT_EQ(server.get(), "");
    }
}

TEST(SslSocket, RsaCertificateAndTls12) {
    auto l = listener();
    auto server = serve(l, server_context("server-rsa"), echo);
    auto ctx = client_context();
    ctx.set_maximum_version(ssl::tls_version::tlsv1_2);
    EXPECT_EQ(ctx.maximum_version(), ssl::tls_version::tlsv1_2);
    auto tls = ctx.wrap_socket(connect_to(l), {.server_hostname = "example.test"});
    EXPECT_EQ(tls.version(), "TLSv1.2");
    tls.sendall("rsa");
    EXPECT_EQ(tls.recv(100), "rsa");
    tls.close();
    EXPECT_EQ(server.get(), "");
}

TEST(SslSocket, Ipv4AddressCheckedAgainstIpEntries) {
    auto l = listener();
    auto server = serve(l, server_context(), echo);
    auto tls = client_context().wrap_socket(connect_to(l), {.server_hostname = "127.0.0.1"});
    tls.sendall("ip");
    EXPECT_EQ(tls.recv(10), "ip");
    tls.close();
    EXPECT_EQ(server.get(), "");
}

TEST(SslSocket, BufferedReaderAndWriterOverTls) {
    static_assert(sock::byte_stream<ssl::socket>);
    auto l = listener();
    auto server = serve(l, server_context(), echo);
    auto tls = client_context().wrap_socket(connect_to(l), {.server_hostname = "localhost"});
    sock::buffered_writer<ssl::socket> w(tls);
    w.write("one\ntw");
    w.write("o\nthree\n");
    w.flush();
    sock::buffered_reader<ssl::socket> r(tls);
    EXPECT_EQ(r.readline(), "one\n");
    EXPECT_EQ(r.readline(), "two\n");
    EXPECT_EQ(r.readexactly(6), "three\n");
    tls.close();
    EXPECT_EQ(server.get(), "");
}

// MSG_MORE holds a record in user space until the next send, close or wait to read; a wait
// must never keep it from the peer, or both sides would wait for ever.
TEST(SslSocket, MsgMoreHoldsRecordsForTheNextSendOrWait) {
    auto l = listener();
    auto server = serve(l, server_context(), [](ssl::socket& s) {
        s.sendall("a", MSG_MORE);
        s.sendall("b");           // goes out with "a"
        s.sendall("c", MSG_MORE);
        EXPECT_EQ(s.recv(10), "ack");  // "c" goes out before this waits
        s.sendall("d", MSG_MORE);
        s.close();                // and "d" with close_notify
    });
    auto tls = client_context().wrap_socket(connect_to(l), {.server_hostname = "localhost"});
    std::string got;
    while (got.size() < 3) got += tls.recv(10);
    EXPECT_EQ(got, "abc");
    tls.sendall("ack");
    EXPECT_EQ(tls.recv(10), "d");
    EXPECT_EQ(tls.recv(10), "");
    std::error_code ec;
    tls.sendall("x", MSG_OOB, ec);
    EXPECT_EQ(ec, std::errc::invalid_argument);
    tls.close();  // the server's close waits for this close_notify
    EXPECT_EQ(server.get(), "");
}

TEST(SslSocket, KtlsFallbackIsSilentAndCorrect) {
    // This kernel has no TLS module: kTLS is asked for (SSL_OP_ENABLE_KTLS) and quietly not had.
    auto l = listener();
    bool server_ktls = true;
    auto server = serve(l, server_context(), [&](ssl::socket& s) {
        server_ktls = s.ktls_send() || s.ktls_recv();
        echo(s);
    });
    auto tls = client_context().wrap_socket(connect_to(l), {.server_hostname = "localhost"});
    EXPECT_FALSE(tls.ktls_send());
    EXPECT_FALSE(tls.ktls_recv());
    const auto data = pattern(200000);
    tls.sendall(data);
    std::string back;
    while (back.size() < data.size()) back += tls.recv(1 << 16);
    EXPECT_TRUE(back == data);
    EXPECT_TRUE(queue_empty());
    tls.close();
    EXPECT_EQ(server.get(), "");
    EXPECT_FALSE(server_ktls);
}

// -- verification failures, in words -------------------------------------------------------

// The client's handshake error against a server using `name`'s certificate.
test::thrown client_failure(const std::string& name, ssl::context ctx, const std::string& host,
                            std::string* server_error = nullptr) {
    auto l = listener();
    auto server = serve(l, server_context(name), echo);
    auto c = connect_to(l);
    auto t = capture([&] { (void)ctx.wrap_socket(std::move(c), {.server_hostname = host}); });
    const auto s = server.get();
    if (server_error != nullptr) *server_error = s;
    return t;
}

TEST(SslVerify, HostnameMismatchSaysWhichNameWasExpected) {
    auto l = listener();
    auto server = serve(l, server_context("wrong-host"), echo);
    auto c = connect_to(l);
    const auto where = "127.0.0.1:" + port_of(l);
    auto t = capture([&] { (void)client_context().wrap_socket(std::move(c), {.server_hostname = "example.test"}); });
    ASSERT_TRUE(t.is<ssl::error>()) << t.type_name() << ": " << t.what;
    EXPECT_EQ(t.what, "handshake " + where + ": certificate verify failed: hostname mismatch (expected example.test)");
    EXPECT_EQ(t.code, ssl::errc::certificate_verify_failed);
    EXPECT_TRUE(queue_empty());
    const auto s = server.get();
    EXPECT_NE(s.find("handshake"), std::string::npos) << s;
    EXPECT_EQ(s.find('\n'), std::string::npos) << s;
}

TEST(SslVerify, UntrustedCa) {
    auto t = client_failure("server", client_context("other-ca.crt"), "localhost");
    ASSERT_TRUE(t.is<ssl::error>()) << t.what;
    EXPECT_EQ(t.code, ssl::errc::certificate_verify_failed);
    EXPECT_NE(t.what.find(": certificate verify failed: unable to get local issuer certificate"), std::string::npos) << t.what;
}

TEST(SslVerify, Expired) {
    auto t = client_failure("expired", client_context(), "localhost");
    ASSERT_TRUE(t.is<ssl::error>()) << t.what;
    EXPECT_NE(t.what.find(": certificate verify failed: certificate has expired"), std::string::npos) << t.what;
}

TEST(SslVerify, SelfSigned) {
    auto t = client_failure("self-signed", client_context(), "localhost");
    ASSERT_TRUE(t.is<ssl::error>()) << t.what;
    EXPECT_NE(t.what.find(": certificate verify failed: self-signed certificate"), std::string::npos) << t.what;
}

TEST(SslVerify, NoneAcceptsAnything) {
    ssl::context ctx(ssl::protocol::tls_client);
    EXPECT_THROW(ctx.set_verify_mode(ssl::cert_required::none), std::invalid_argument);
    ctx.set_check_hostname(false);
    ctx.set_verify_mode(ssl::cert_required::none);
    auto l = listener();
    auto server = serve(l, server_context("self-signed"), echo);
    auto tls = ctx.wrap_socket(connect_to(l));
    tls.sendall("x");
    EXPECT_EQ(tls.recv(1), "x");
    tls.close();
    EXPECT_EQ(server.get(), "");
}

TEST(SslVerify, CheckHostnameNeedsServerHostname) {
    auto l = listener();
    EXPECT_THROW((void)client_context().wrap_socket(connect_to(l)), std::invalid_argument);
}

// -- mutual TLS ----------------------------------------------------------------------------

ssl::context mtls_server_context() {
    auto ctx = server_context();
    ctx.load_verify_locations(cert("ca.crt"));
    ctx.set_verify_mode(ssl::cert_required::required);
    return ctx;
}

TEST(SslMutual, ClientCertificateAccepted) {
    auto l = listener();
    std::string seen;
    auto server = serve(l, mtls_server_context(), [&](ssl::socket& s) {
        seen = s.getpeercert().value_or(ssl::certificate{}).subject;
        echo(s);
    });
    auto ctx = client_context();
    ctx.load_cert_chain(cert("client.crt"), cert("client.key"));
    auto tls = ctx.wrap_socket(connect_to(l), {.server_hostname = "localhost"});
    tls.sendall("me");
    EXPECT_EQ(tls.recv(10), "me");
    tls.close();
    EXPECT_EQ(server.get(), "");
    EXPECT_EQ(seen, "CN=client");
}

TEST(SslMutual, MissingClientCertificateIsOneLineOnBothSides) {
    auto l = listener();
    auto server = serve(l, mtls_server_context(), echo);
    std::string client_error;
    try {
        // TLS 1.3: the client's handshake ends before the server has judged it; the server's
        // alert arrives with the first read.
        auto tls = client_context().wrap_socket(connect_to(l), {.server_hostname = "localhost"});
        (void)tls.recv(10);
    } catch (const ssl::error& e) {
        client_error = e.what();
        EXPECT_EQ(e.code(), ssl::errc::peer_alert);
    }
    EXPECT_NE(client_error.find("alert certificate required"), std::string::npos) << client_error;
    EXPECT_EQ(client_error.find('\n'), std::string::npos);
    const auto s = server.get();
    EXPECT_EQ(s, "handshake " + s.substr(10, s.find(": ") - 10) + ": peer did not return a certificate");
    EXPECT_TRUE(queue_empty());
}

// -- ALPN ----------------------------------------------------------------------------------

TEST(SslAlpn, ServerPicksByItsOwnPreference) {
    auto l = listener();
    auto sctx = server_context();
    sctx.set_alpn_protocols({"http/1.1", "h2"});
    std::string server_saw;
    auto server = serve(l, sctx, [&](ssl::socket& s) {
        server_saw = s.selected_alpn_protocol();
        echo(s);
    });
    auto ctx = client_context();
    ctx.set_alpn_protocols({"h2", "http/1.1"});
    auto tls = ctx.wrap_socket(connect_to(l), {.server_hostname = "localhost"});
    EXPECT_EQ(tls.selected_alpn_protocol(), "http/1.1");
    tls.close();
    EXPECT_EQ(server.get(), "");
    EXPECT_EQ(server_saw, "http/1.1");
}

TEST(SslAlpn, NoCommonProtocolIsNoAlpn) {
    auto l = listener();
    auto sctx = server_context();
    sctx.set_alpn_protocols({"imap"});
    auto server = serve(l, sctx, echo);
    auto ctx = client_context();
    ctx.set_alpn_protocols({"h2"});
    auto tls = ctx.wrap_socket(connect_to(l), {.server_hostname = "localhost"});
    EXPECT_EQ(tls.selected_alpn_protocol(), "");
    tls.close();
    EXPECT_EQ(server.get(), "");
}

// -- resumption ----------------------------------------------------------------------------

void expect_resumes(ssl::tls_version v) {
    auto l = listener();
    auto server = serve(l, server_context(), echo, 2);
    auto ctx = client_context();
    ctx.set_maximum_version(v);
    ssl::session saved;
    {
        auto first = ctx.wrap_socket(connect_to(l), {.server_hostname = "localhost"});
        EXPECT_FALSE(first.session_reused());
        first.sendall("1");
        EXPECT_EQ(first.recv(10), "1");  // TLS 1.3: the tickets come with (before) this reply
        saved = first.session();
        first.close();
    }
    ASSERT_TRUE(saved);
    if (v == ssl::tls_version::tlsv1_3) {
        EXPECT_TRUE(saved.has_ticket());
    }
    auto second = ctx.wrap_socket(connect_to(l), {.server_hostname = "localhost", .session = &saved});
    EXPECT_TRUE(second.session_reused());
    second.sendall("2");
    EXPECT_EQ(second.recv(10), "2");
    second.close();
    EXPECT_EQ(server.get(), "");
}

TEST(SslResumption, Tls13Ticket) { expect_resumes(ssl::tls_version::tlsv1_3); }
TEST(SslResumption, Tls12) { expect_resumes(ssl::tls_version::tlsv1_2); }

// -- timeouts ------------------------------------------------------------------------------

TEST(SslTimeout, HandshakeAgainstSilentServerIsBounded) {
    auto l = listener();  // accepts in the kernel; never says anything
    auto c = connect_to(l);
    c.settimeout(0.2);
    const auto where = "127.0.0.1:" + port_of(l);
    auto t = capture([&] { (void)client_context().wrap_socket(std::move(c), {.server_hostname = "localhost"}); });
    ASSERT_TRUE(t.is<sock::timeout>()) << t.type_name() << ": " << t.what;
    EXPECT_EQ(t.what, "handshake " + where + ": timed out");
}

TEST(SslTimeout, SlowlorisClientBoundedByHandshakeTimeout) {
    // A server socket with no timeout of its own: the context's handshake timeout bounds it.
    auto l = listener();
    auto silent = connect_to(l);
    auto conn = l.accept().first;
    auto ctx = server_context();
    ctx.set_handshake_timeout(200ms);
    auto t = capture([&] { (void)ctx.wrap_socket(std::move(conn), {.server_side = true}); });
    ASSERT_TRUE(t.is<sock::timeout>()) << t.type_name() << ": " << t.what;
}

TEST(SslTimeout, RecvTimesOutThenWorks) {
    auto l = listener();
    std::promise<void> go;
    auto server = serve(l, server_context(), [&](ssl::socket& s) {
        go.get_future().wait();
        s.sendall("late");
        echo(s);
    });
    auto tls = client_context().wrap_socket(connect_to(l), {.server_hostname = "localhost"});
    tls.settimeout(0.05);
    auto t = capture([&] { (void)tls.recv(10); });
    ASSERT_TRUE(t.is<sock::timeout>()) << t.what;
    EXPECT_TRUE(queue_empty());
    go.set_value();
    tls.settimeout(limit);
    EXPECT_EQ(tls.recv(10), "late");
    tls.close();
    EXPECT_EQ(server.get(), "");
}

// -- ends of the stream --------------------------------------------------------------------

TEST(SslEnd, CleanEndAfterCloseNotify) {
    auto l = listener();
    auto server = serve(l, server_context(), [](ssl::socket& s) {
        s.sendall("bye");
        s.close();
    });
    auto tls = client_context().wrap_socket(connect_to(l), {.server_hostname = "localhost"});
    EXPECT_EQ(tls.recv(10), "bye");
    EXPECT_EQ(tls.recv(10), "");
    EXPECT_EQ(tls.recv(10), "");
    tls.close();
    EXPECT_EQ(server.get(), "");
}

TEST(SslEnd, CutWithoutCloseNotifyIsTruncation) {
    auto l = listener();
    auto server = serve(l, server_context(), [](ssl::socket& s) {
        s.sendall("part");
        s.raw().shutdown(sock::shut::rdwr);  // TCP FIN, no close_notify
    });
    auto tls = client_context().wrap_socket(connect_to(l), {.server_hostname = "localhost"});
    EXPECT_EQ(server.get(), "");
    EXPECT_EQ(tls.recv(10), "part");
    auto t = capture([&] { (void)tls.recv(10); });
    ASSERT_TRUE(t.is<ssl::error>()) << t.type_name() << ": " << t.what;
    EXPECT_EQ(t.code, ssl::errc::unexpected_eof);
    EXPECT_EQ(t.what, "recv " + tls.describe() + ": unexpected end of stream (no close_notify)");
    EXPECT_TRUE(queue_empty());
    std::error_code ec;
    EXPECT_EQ(tls.recv(10, 0, ec), "");
    EXPECT_EQ(ec, ssl::errc::not_connected);
}

TEST(SslEnd, CloseAgainstPeerThatNeverAnswersIsBounded) {
    auto l = listener();
    std::promise<void> done;
    auto server = serve(l, server_context(), [&](ssl::socket&) { done.get_future().wait(); });
    auto ctx = client_context();
    ctx.set_shutdown_timeout(1ms);
    auto tls = ctx.wrap_socket(connect_to(l), {.server_hostname = "localhost"});
    tls.close();  // the peer reads nothing and sends no close_notify: returns after ~1 ms
    EXPECT_FALSE(tls);
    done.set_value();
    EXPECT_EQ(server.get(), "");
}

// A TLS 1.3 server holds its session tickets for its next write (one send for both): a
// server that writes nothing and closes still hands them over, ahead of its close_notify.
TEST(SslEnd, TicketsHeldAfterTheHandshakeGoOutWithTheClose) {
    auto l = listener();
    auto server = serve(l, server_context(), [](ssl::socket& s) { s.close(); });
    auto tls = client_context().wrap_socket(connect_to(l), {.server_hostname = "localhost"});
    EXPECT_EQ(tls.recv(10), "");
    EXPECT_TRUE(tls.session().has_ticket());
    tls.close();
    EXPECT_EQ(server.get(), "");
}

// Shutdown timeout zero: close() sends everything and close_notify, waiting for the socket
// to take them (8 MiB held with MSG_MORE do not fit at once), but never for the peer's
// close_notify: the server is done while the client has not closed yet.
TEST(SslEnd, ZeroShutdownTimeoutSendsAllButDoesNotWaitForThePeer) {
    auto l = listener();
    auto sctx = server_context();
    sctx.set_shutdown_timeout(std::chrono::nanoseconds::zero());
    const std::string big = pattern(8 << 20);
    auto server = serve(l, sctx, [&big](ssl::socket& s) {
        s.sendall(big, MSG_MORE);
        s.close();
    });
    auto tls = client_context().wrap_socket(connect_to(l), {.server_hostname = "localhost"});
    std::string got;
    for (std::string part; !(part = tls.recv(1 << 16)).empty();) got += part;  // "" is close_notify
    EXPECT_TRUE(got == big) << got.size();
    // Waiting for our close_notify, it would sit in close() until its timeout (10 s).
    ASSERT_EQ(server.wait_for(5s), std::future_status::ready) << "close() waits for the peer";
    EXPECT_EQ(server.get(), "");
    tls.close();
}

TEST(SslEnd, UnwrapGivesThePlainSocketBack) {
    auto l = listener();
    auto server = serve(l, server_context(), [](ssl::socket& s) {
        EXPECT_EQ(s.recv(10), "tls");
        auto plain = s.unwrap();
        plain.sendall("plain");
    });
    auto tls = client_context().wrap_socket(connect_to(l), {.server_hostname = "localhost"});
    tls.sendall("tls");
    auto plain = tls.unwrap();
    EXPECT_FALSE(tls);
    std::string got;
    for (std::string part; !(part = plain.recv(10)).empty();) got += part;
    EXPECT_EQ(got, "plain");
    EXPECT_EQ(server.get(), "");
}

TEST(SslEnd, UnwrapAgainstSilentPeerTimesOut) {
    auto l = listener();
    std::promise<void> done;
    auto server = serve(l, server_context(), [&](ssl::socket&) { done.get_future().wait(); });
    auto ctx = client_context();
    ctx.set_shutdown_timeout(20ms);
    auto tls = ctx.wrap_socket(connect_to(l), {.server_hostname = "localhost"});
    auto t = capture([&] { (void)tls.unwrap(); });
    EXPECT_TRUE(t.is<sock::timeout>()) << t.type_name() << ": " << t.what;
    done.set_value();
    EXPECT_EQ(server.get(), "");
}

// -- what must never happen ----------------------------------------------------------------

TEST(SslNever, PlaintextToTlsServerIsOneLineError) {
    auto l = listener();
    auto server = serve(l, server_context(), echo);
    auto c = connect_to(l);
    c.sendall("1");
    c.shutdown(sock::shut::wr);
    std::error_code ec;
    (void)c.recv(100, 0, ec);
    const auto s = server.get();
    EXPECT_EQ(s.rfind("handshake 127.0.0.1:", 0), 0u) << s;
    EXPECT_EQ(s.find('\n'), std::string::npos) << s;
    EXPECT_TRUE(s.find("unexpected end of stream") != std::string::npos ||
                s.find("wrong version number") != std::string::npos ||
                s.find("packet length too long") != std::string::npos) << s;
}

TEST(SslNever, HttpToTlsServerIsOneLineError) {
    auto l = listener();
    auto server = serve(l, server_context(), echo);
    auto c = connect_to(l);
    c.sendall("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    std::error_code ec;  // an alert, an end of stream or a reset: the server's business here
    (void)c.recv(100, 0, ec);
    const auto s = server.get();
    EXPECT_EQ(s.find('\n'), std::string::npos) << s;
    EXPECT_NE(s.find(": http request"), std::string::npos) << s;
}

bool sigpipe_is_default() {
    struct sigaction current {};
    return ::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL;
}

TEST(SslNever, NoSigpipeWhenThePeerHasGone) {
    ASSERT_TRUE(sigpipe_is_default()) << "something ignored SIGPIPE before the test";
    auto l = listener();
    auto server = serve(l, server_context(), [](ssl::socket& s) {
        EXPECT_EQ(s.recv(10), "x");
        // Reset: SO_LINGER 0 makes close send RST.
        s.raw().setsockopt(sock::opt::linger, sock::opt::linger_t(std::chrono::seconds(0)));
        s.raw().close();
    });
    auto tls = client_context().wrap_socket(connect_to(l), {.server_hostname = "localhost"});
    tls.sendall("x");
    EXPECT_EQ(server.get(), "");
    std::error_code ec;
    const auto chunk = pattern(16384);
    for (int i = 0; i < 1000 && !ec; ++i) tls.sendall(chunk, 0, ec);
    EXPECT_TRUE(ec == std::errc::broken_pipe || ec == std::errc::connection_reset) << ec.message();
    EXPECT_TRUE(sigpipe_is_default());
    EXPECT_TRUE(queue_empty());
}

TEST(SslNever, NoStaleErrorBetweenCalls) {
    // A failed handshake on one connection, then a good one on the same thread: the first's
    // errors must not surface in the second's calls.
    auto t = client_failure("wrong-host", client_context(), "localhost");
    ASSERT_TRUE(t.is<ssl::error>());
    EXPECT_TRUE(queue_empty());
    ssl::context bad(ssl::protocol::tls_server);
    EXPECT_THROW(bad.load_cert_chain(cert("ca.crt"), cert("server.key")), ssl::error);
    EXPECT_TRUE(queue_empty());
    auto l = listener();
    auto server = serve(l, server_context(), echo);
    auto tls = client_context().wrap_socket(connect_to(l), {.server_hostname = "localhost"});
    tls.sendall("fine");
    EXPECT_EQ(tls.recv(10), "fine");
    tls.close();
    EXPECT_EQ(server.get(), "");
}

// -- context errors ------------------------------------------------------------------------

TEST(SslContext, LoadCertChainNamesTheFileAndTheReason) {
    ssl::context ctx(ssl::protocol::tls_server);
    auto missing = capture([&] { ctx.load_cert_chain(cert("server.crt"), cert("missing.key")); });
    ASSERT_TRUE(missing.is<sock::error>()) << missing.type_name();
    EXPECT_EQ(missing.what, "load_cert_chain " + cert("missing.key") + ": No such file or directory");
    auto mismatch = capture([&] { ctx.load_cert_chain(cert("server.crt"), cert("client.key")); });
    ASSERT_TRUE(mismatch.is<ssl::error>()) << mismatch.type_name();
    EXPECT_EQ(mismatch.what, "load_cert_chain " + cert("client.key") + ": key does not match certificate");
    EXPECT_EQ(mismatch.code, ssl::errc::bad_file);
    auto rsa_key = capture([&] { ctx.load_cert_chain(cert("server.crt"), cert("server-rsa.key")); });
    EXPECT_EQ(rsa_key.what, "load_cert_chain " + cert("server-rsa.key") + ": key does not match certificate");
    auto not_pem = capture([&] { ctx.load_cert_chain(cert("server.key"), cert("server.key")); });
    EXPECT_EQ(not_pem.what, "load_cert_chain " + cert("server.key") + ": no PEM certificate in it");
    auto ca = capture([&] { ctx.load_verify_locations("", "", "not a certificate"); });
    EXPECT_EQ(ca.what, "load_verify_locations cadata: no PEM certificate in it");
    EXPECT_TRUE(queue_empty());
}

TEST(SslContext, PythonDefaults) {
    auto client = ssl::create_default_context();
    EXPECT_EQ(client.protocol(), ssl::protocol::tls_client);
    EXPECT_EQ(client.verify_mode(), ssl::cert_required::required);
    EXPECT_TRUE(client.check_hostname());
    EXPECT_EQ(client.minimum_version(), ssl::tls_version::tlsv1_2);
    EXPECT_EQ(client.maximum_version(), ssl::tls_version::tlsv1_3);
    ssl::context server(ssl::protocol::tls_server);
    EXPECT_EQ(server.verify_mode(), ssl::cert_required::none);
    EXPECT_FALSE(server.check_hostname());
    EXPECT_THROW(server.set_ciphers("NO-SUCH-CIPHER"), std::invalid_argument);
    auto l = listener();
    EXPECT_THROW((void)server.wrap_socket(connect_to(l)), std::invalid_argument);
}

}  // namespace
