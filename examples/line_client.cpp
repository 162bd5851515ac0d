// A line client written with the blocking buffered streams: sends each line of stdin to a
// server (chat-server, line-echo) and prints each line the server sends, until the server
// closes. At the end of stdin it says so (shutdown), and goes on printing until then.
//
//   line-client [--host HOST] [--port PORT]    (chat-server's port, 8002, by default)

#include "greet/cli.hpp"

#include <sock/sock.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <thread>

int main(int argc, char** argv) {
    const std::string name = "line-client";
    greet::cli::ignore_sigpipe();
    CLI::App app{"Sends each line of stdin to a line server (chat-server, line-echo) and prints "
                 "each line it sends back, until the server closes the connection.",
                 name};
    greet::cli::add_conventions(app, name);
    std::string host = "127.0.0.1";
    int port = 8002;
    greet::cli::add_host_option(app, host, "Server address or name");
    app.add_option("--port", port, "Server TCP port")
        ->capture_default_str()
        ->check(greet::cli::port_number(1));
    if (auto code = greet::cli::parse(app, argc, argv)) return *code;

    try {
        sock::socket s = sock::create_connection({host, static_cast<std::uint16_t>(port)},
                                                         std::chrono::seconds(5));
        s.settimeout(std::nullopt);  // a line may be long in coming

        // stdin to the server, on a thread of its own: one flush per line typed, one per
        // burst when stdin is a pipe (flush only when nothing more is buffered).
        std::thread([&s] {
            sock::buffered_writer writer(s);
            std::error_code ec;
            for (std::string line; std::getline(std::cin, line) && !ec;) {
                writer.write(line + "\n", ec);
                if (!ec && std::cin.rdbuf()->in_avail() <= 0) writer.flush(ec);
            }
            if (!ec) writer.flush(ec);
            s.shutdown(sock::shut::wr, ec);  // end of stdin: the server sees end of stream
        }).detach();

        // The server's lines to stdout, as they come.
        sock::buffered_reader reader(s);
        for (;;) {
            std::error_code ec;
            const std::string_view line = reader.readline(ec);
            if (ec == sock::stream_errc::limit_overrun) continue;  // over 64 KiB: dropped
            if (ec) throw std::system_error(ec, "readline " + s.describe());
            if (line.empty()) break;  // the server closed
            if (!greet::cli::write_stdout(line)) break;
        }
    } catch (const std::exception& e) {
        greet::cli::report(name, e.what());
        std::quick_exit(greet::cli::failure);
    }
    // The stdin thread may still wait for a line: end without waiting for it (no destructor
    // runs, so the socket it uses stays valid to the end).
    std::quick_exit(greet::cli::ok);
}
