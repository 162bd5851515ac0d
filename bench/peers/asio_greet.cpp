// asio_greet: the greeting server written the way Asio's own C++20 coroutine
// examples would write it, as a benchmark baseline.
//
// One io_context on one thread. An acceptor coroutine spawns one coroutine per
// connection; each reads at most 1024 bytes once, racing a 5 s steady_timer with
// awaitable_operators' ||, replies with one write and closes.
//
// usage: peer-asio-greet PORT   (0 picks a free port)
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
constexpr auto no_throw = asio::experimental::as_tuple(asio::use_awaitable);

constexpr std::string_view welcome = "welcome to server!";
constexpr std::string_view go_out = "please go out!";

asio::awaitable<void> greet(tcp::socket sock) {
    std::array<char, 1024> buf;
    asio::steady_timer timer(sock.get_executor(), std::chrono::seconds(5));
    auto first = co_await (sock.async_read_some(asio::buffer(buf), no_throw) || timer.async_wait(no_throw));
    if (first.index() == 1) co_return;  // timed out: close without a reply, like the seed
    auto [ec, n] = std::get<0>(first);
    if (ec && ec != asio::error::eof) co_return;  // EOF counts as "not 1", as in the seed
    std::string_view reply = (n == 1 && buf[0] == '1') ? welcome : go_out;
    co_await asio::async_write(sock, asio::buffer(reply), no_throw);
}  // the socket closes here

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor) {
    for (;;) {
        auto [ec, sock] = co_await acceptor.async_accept(no_throw);
        if (ec == asio::error::operation_aborted) co_return;
        if (ec) continue;  // EMFILE and the like: try again
        asio::co_spawn(acceptor.get_executor(), greet(std::move(sock)), asio::detached);
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
