// asio_lines: a line-echo server written the way Asio's own C++20 coroutine examples
// would write it, as the W5 baseline.
//
// One io_context on one thread; one coroutine per connection that reads a line with
// async_read_until on a dynamic string buffer ('\n', at most 64 KiB), writes that line
// back with async_write, and erases it (the pattern of Asio's own examples). TCP_NODELAY
// is set, as a server that writes small replies one at a time needs (without it the
// second line of a batch waits for the client's delayed ACK).
//
// usage: peer-asio-lines PORT   (0 picks a free port)
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

using asio::ip::tcp;
constexpr auto no_throw = asio::experimental::as_tuple(asio::use_awaitable);
constexpr std::size_t max_line = 64 * 1024;

asio::awaitable<void> echo_lines(tcp::socket sock) {
    sock.set_option(tcp::no_delay(true));
    std::string data;
    for (;;) {
        auto [rec, n] = co_await asio::async_read_until(sock, asio::dynamic_buffer(data, max_line), '\n',
                                                        no_throw);
        if (rec) co_return;  // EOF, a line over the limit, or an error: close
        auto [wec, w] = co_await asio::async_write(sock, asio::buffer(data.data(), n), no_throw);
        if (wec) co_return;
        data.erase(0, n);
    }
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor) {
    for (;;) {
        auto [ec, sock] = co_await acceptor.async_accept(no_throw);
        if (ec == asio::error::operation_aborted) co_return;
        if (ec) continue;  // EMFILE and the like: try again
        asio::co_spawn(acceptor.get_executor(), echo_lines(std::move(sock)), asio::detached);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
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
    asio::co_spawn(ctx, accept_loop(acceptor), asio::detached);
    ctx.run();
    return 0;
}
