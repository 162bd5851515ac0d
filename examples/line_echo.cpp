// A line-echo server on the event engine, written with the buffered streams: each client's
// lines come back as they were sent. Lines a client sends in one burst go back in one send:
// the writer gathers them and drains only when no complete line is left to echo.
//
//   line-echo [PORT] [--threads N]    listens on 127.0.0.1 (PORT 0, the default, picks a free
//                                     one); N event loops (0, the default: one per core)

#include "greet/cli.hpp"

#include <sock/async_stream.hpp>
#include <sock/server.hpp>

#include <cstdint>
#include <exception>
#include <iostream>
#include <string>

namespace {

sock::task<> echo_lines(sock::async_socket conn) {
    conn.settimeout(60.0);  // an idle client is let go, not kept for ever
    sock::stream_reader reader(conn);
    sock::stream_writer writer(conn);
    std::error_code ec;
    for (;;) {
        const auto line = co_await reader.readline(ec);
        if (ec) {
            if (ec == sock::stream_errc::limit_overrun) continue;  // a line over 64 KiB is dropped
            break;                                                 // timeout, error
        }
        if (line.empty()) break;  // end of stream
        writer.write(line, ec);
        if (ec) {  // the writer is full: send what it has, then this line (still valid here)
            co_await writer.drain(ec);
            if (ec) break;
            writer.write(line);
        }
        // Drain once no whole line is left to answer from the buffer: the client may wait for
        // these replies before it sends more. A buffer that ends in "\n" has one, unsearched.
        const auto rest = reader.buffered();
        if (rest.empty() || (rest.back() != '\n' && rest.find('\n') == std::string_view::npos)) {
            co_await writer.drain(ec);
            if (ec) break;
        }
    }
    co_await writer.drain(ec);  // what is left, when the client only stopped sending
}

}  // namespace

int main(int argc, char** argv) {
    const std::string name = "line-echo";
    CLI::App app{"A line-echo server on the event engine, written with the buffered streams: "
                 "sends back each line a client sends, on 127.0.0.1.",
                 name};
    greet::cli::add_conventions(app, name, "Signals: SIGINT and SIGTERM stop it gracefully.");
    int port = 0;
    app.add_option("port", port, "Port to listen on; 0 picks a free one (printed)")
        ->capture_default_str()
        ->check(greet::cli::port_number());
    unsigned threads = 0;
    app.add_option("--threads", threads, "Event loops, one thread each; 0 = one per core")
        ->capture_default_str()
        ->check(greet::cli::whole_number(0, 1024));
    if (auto code = greet::cli::parse(app, argc, argv)) return *code;

    try {
        sock::server_config config;
        config.listen.push_back(sock::address("127.0.0.1", static_cast<std::uint16_t>(port)));
        config.threads = threads;
        sock::server server(std::move(config), echo_lines);
        std::cout << "listening on " << server.addresses().front().to_string() << std::endl;
        server.run();  // until SIGINT or SIGTERM
    } catch (const std::exception& e) {
        greet::cli::report(name, e.what());
        return greet::cli::failure;
    }
}
