// The seed's server.py, line for line, with sock: the six server steps.
// Not in the seed: an optional port argument (0 picks a free one, printed after listen) so
// that tests can run it, --help and --version, and errors as one line and exit 1 where
// Python would print a traceback.

#include "greet/cli.hpp"

#include <sock/sock.hpp>

#include <cstdint>
#include <exception>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
    const std::string name = "seed-server";
    greet::cli::ignore_sigpipe();  // a closed stdout must not kill it, nor a hangup
    greet::cli::ignore_sighup();
    CLI::App app{"The tutorial's server: replies \"welcome to server!\" to a client that sends "
                 "\"1\" and \"please go out!\" to any other, one client at a time, on localhost.",
                 name};
    greet::cli::add_conventions(app, name,
                                "Signals: SIGINT and SIGTERM end it at once; SIGHUP is ignored.");
    int port = 8001;
    app.add_option("port", port, "Port to listen on; 0 picks a free one (printed)")
        ->capture_default_str()
        ->check(greet::cli::port_number());
    if (auto code = greet::cli::parse(app, argc, argv)) return *code;

    try {
        sock::socket sock(sock::family::inet, sock::kind::stream);  // step 1: create the socket
        sock.bind({"localhost", static_cast<std::uint16_t>(port)}); // step 2: bind it to an address
        sock.listen(5);                                             // step 3: listen, 5 may queue
        std::cout << sock.getsockname().port() << std::endl;        // (not in the seed) the port
        while (true) {
            auto [connection, address] = sock.accept();  // step 4: wait for a client to connect
            try {
                connection.settimeout(5);                // step 5: talk: recv, then send
                std::string buf = connection.recv(1024);
                if (buf == "1") {
                    connection.send("welcome to server!");
                } else {
                    connection.send("please go out!");
                }
            } catch (const sock::timeout&) {
                std::cout << "time out" << std::endl;
            } catch (const sock::error& e) {             // (not in the seed) one client's
                greet::cli::report(name, e.what());      //   failure does not end the server
            }
            connection.close();                          // step 6: close the connection
        }
    } catch (const std::exception& e) {  // (not in the seed) bind, listen or accept failed
        greet::cli::report(name, e.what());
        return greet::cli::failure;
    }
}
