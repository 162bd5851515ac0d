// asio_tls: the greeting and echo servers over TLS written the way Asio's own C++20
// coroutine examples would write them, as W6's and W7's baseline.
//
// One io_context on one thread; asio::ssl::stream<tcp::socket> (a BIO pair inside, 17 KiB
// buffers, SSL_MODE_RELEASE_BUFFERS: Asio's choices, untouched). The context is TLS 1.3
// only with the ECDSA P-256 certificate and OpenSSL's defaults otherwise (session tickets
// on), as the other peers.
//
//   greet  one coroutine per connection: handshake, read once, answer "welcome to
//          server!" to "1" (anything else, EOF included: "please go out!"), then
//          async_shutdown (our close_notify; Asio then waits for the client's, or for the
//          client to close). The whole exchange races a 5 s timer, as asio_greet.cpp's
//          read does, since Asio's shutdown has no timeout of its own.
//   echo   one coroutine per connection: handshake, then async_read_some into 16 KiB (a
//          read returns one record's plaintext at most, so asio_echo.cpp's 64 KiB would
//          only sit idle in W8) and async_write back, until an error or EOF.
//
// TCP_NODELAY on every connection, as in asio_lines.cpp: the greeting goes out in three
// writes (the tickets, the answer, close_notify), and without it Nagle holds the second
// until the client's delayed ACK (pingpong mode: some 40 ms), so W6 would measure that
// timer rather than the server. nginx's stream module sets it by default too.
//
// usage: peer-asio-tls PORT CERT KEY [greet|echo]   (PORT 0 picks a free one)
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/ssl.hpp>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

namespace {

using asio::ip::tcp;
using tls_stream = asio::ssl::stream<tcp::socket>;
using namespace asio::experimental::awaitable_operators;
constexpr auto no_throw = asio::experimental::as_tuple(asio::use_awaitable);

constexpr std::string_view welcome = "welcome to server!";
constexpr std::string_view go_out = "please go out!";
constexpr std::size_t read_size = 16 * 1024;

asio::awaitable<void> exchange(tls_stream& stream) {
    auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, no_throw);
    if (hec) co_return;
    std::array<char, 1024> buf;
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(buf), no_throw);
    // A clean close_notify (eof) counts as "not 1", as in the seed; other errors: close.
    if (ec && ec != asio::error::eof) co_return;
    std::string_view reply = (!ec && n == 1 && buf[0] == '1') ? welcome : go_out;
    auto [wec, w] = co_await asio::async_write(stream, asio::buffer(reply), no_throw);
    if (wec) co_return;
    co_await stream.async_shutdown(no_throw);
}

asio::awaitable<void> greet(tls_stream stream) {
    asio::steady_timer timer(stream.get_executor(), std::chrono::seconds(5));
    co_await (exchange(stream) || timer.async_wait(no_throw));
}  // the socket closes here

asio::awaitable<void> echo(tls_stream stream) {
    auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::server, no_throw);
    if (hec) co_return;
    auto buf = std::make_unique<char[]>(read_size);  // too big for the coroutine frame
    for (;;) {
        auto [rec, n] = co_await stream.async_read_some(asio::buffer(buf.get(), read_size), no_throw);
        if (rec) co_return;  // close_notify, EOF or error: close
        auto [wec, w] = co_await asio::async_write(stream, asio::buffer(buf.get(), n), no_throw);
        if (wec) co_return;
    }
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, asio::ssl::context& tls, bool echo_mode) {
    for (;;) {
        auto [ec, sock] = co_await acceptor.async_accept(no_throw);
        if (ec == asio::error::operation_aborted) co_return;
        if (ec) continue;  // EMFILE and the like: try again
        sock.set_option(tcp::no_delay(true), ec);
        tls_stream stream(std::move(sock), tls);
        if (echo_mode)
            asio::co_spawn(acceptor.get_executor(), echo(std::move(stream)), asio::detached);
        else
            asio::co_spawn(acceptor.get_executor(), greet(std::move(stream)), asio::detached);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4 || argc > 5 || (argc == 5 && std::strcmp(argv[4], "greet") != 0 && std::strcmp(argv[4], "echo") != 0)) {
        std::fprintf(stderr, "usage: %s PORT CERT KEY [greet|echo]\n", argv[0]);
        return 2;
    }
    const bool echo_mode = argc == 5 && std::strcmp(argv[4], "echo") == 0;
    asio::ssl::context tls(asio::ssl::context::tlsv13_server);
    tls.set_options(asio::ssl::context::default_workarounds);
    tls.use_certificate_chain_file(argv[2]);
    tls.use_private_key_file(argv[3], asio::ssl::context::pem);

    asio::io_context ctx(1);  // concurrency hint: one thread
    tcp::acceptor acceptor(ctx);
    tcp::endpoint where(asio::ip::make_address_v4("127.0.0.1"),
                        static_cast<unsigned short>(std::atoi(argv[1])));
    acceptor.open(where.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(where);
    acceptor.listen(65535);  // the kernel clamps to somaxconn
    std::printf("listening on 127.0.0.1:%u\n", static_cast<unsigned>(acceptor.local_endpoint().port()));
    std::fflush(stdout);

    asio::signal_set stop_signals(ctx, SIGINT, SIGTERM);
    stop_signals.async_wait([&](const asio::error_code&, int) { ctx.stop(); });
    asio::co_spawn(ctx, accept_loop(acceptor, tls, echo_mode), asio::detached);
    ctx.run();
    return 0;
}
