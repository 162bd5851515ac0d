// The seed's client.py, line for line, with sock: the four client steps.
// Not in the seed: an optional port argument so that tests can run it, --help and
// --version, and errors as one line and exit 1 where Python would print a traceback.

#include "greet/cli.hpp"

#include <sock/sock.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <iostream>
#include <string>
#include <thread>

int main(int argc, char** argv) {
    const std::string name = "seed-client";
    greet::cli::ignore_sigpipe();  // a closed stdout must not kill it
    CLI::App app{"The tutorial's client: connects to localhost, waits 2 s, sends \"1\" and "
                 "prints the reply.",
                 name};
    greet::cli::add_conventions(app, name);
    int port = 8001;
    app.add_option("port", port, "Server port")
        ->capture_default_str()
        ->check(greet::cli::port_number(1));
    if (auto code = greet::cli::parse(app, argc, argv)) return *code;

    try {
        sock::socket sock(sock::family::inet, sock::kind::stream);  // step 1: create the socket
        sock.connect({"localhost", static_cast<std::uint16_t>(port)});  // step 2: connect
        std::this_thread::sleep_for(std::chrono::seconds(2));       //   (the seed waits 2 s)
        sock.send("1");                                             // step 3: talk: send,
        std::cout << sock.recv(1024) << std::endl;                  //   then recv
        sock.close();                                               // step 4: close
    } catch (const std::exception& e) {
        greet::cli::report(name, e.what());
        return greet::cli::failure;
    }
    return greet::cli::ok;
}
