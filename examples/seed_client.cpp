// The seed's client.py, line for line, with sock: the four client steps.
// Not in the seed: an optional port argument, so that tests can run it.

#include <sock/sock.hpp>

#include <chrono>
#include <cstdint>
#include <iostream>
#include <thread>

int main(int argc, char** argv) {
    std::uint16_t port = 8001;
    if (argc > 1 && !sock::parse_port(argv[1], port)) {
        std::cerr << "usage: seed-client [PORT]\n";
        return 2;
    }
    try {  // (not in the seed) Python would print a traceback and exit 1
        sock::socket sock(sock::family::inet, sock::kind::stream);  // step 1: create the socket
        sock.connect({"localhost", port});                          // step 2: connect
        std::this_thread::sleep_for(std::chrono::seconds(2));       //   (the seed waits 2 s)
        sock.send("1");                                             // step 3: talk: send,
        std::cout << sock.recv(1024) << std::endl;                  //   then recv
        sock.close();                                               // step 4: close
    } catch (const sock::error& e) {
        std::cerr << "seed-client: " << e.what() << std::endl;
        return 1;
    }
}
