// The seed's server.py, line for line, with sock: the six server steps.
// Not in the seed: an optional port argument (0 picks a free one, printed after listen),
// so that tests can run it.

#include <sock/sock.hpp>

#include <cstdint>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
    std::uint16_t port = 8001;
    if (argc > 1 && !sock::parse_port(argv[1], port)) {
        std::cerr << "usage: seed-server [PORT]\n";
        return 2;
    }
    sock::socket sock(sock::family::inet, sock::kind::stream);  // step 1: create the socket
    sock.bind({"localhost", port});                             // step 2: bind it to an address
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
        }
        connection.close();                          // step 6: close the connection
    }
}
