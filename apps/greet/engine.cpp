#include "greet/engine.hpp"

#include "greet/cli.hpp"
#include "greet/descriptor_limit.hpp"

#include <string>
#include <string_view>

namespace greet {

sock::server_config interactive_engine(unsigned threads, std::size_t max_connections,
                                       bool reuse_port) {
    sock::server_config engine;
    engine.threads = threads;
    engine.max_connections =
        max_connections != 0 ? max_connections : connection_budget(raise_descriptor_limit());
    // TCP_DEFER_ACCEPT hands a connection over only once its first bytes are there. A client
    // that connects and waits (a chat listener, a connection pool warming up, a latency
    // probe) would then sit unseen in the kernel: not counted by --max-connections, not timed
    // by --timeout, silently dropped after the kernel's retries.
    engine.defer_accept = false;
    // Ping-pong sends small messages while earlier bytes may be unacknowledged, which Nagle
    // would hold back for a delayed ACK. Set once on the listener; connections inherit it.
    engine.tcp_nodelay = true;
    engine.reuse_port = reuse_port;
    engine.log = [](std::string_view line) { cli::write_line(2, std::string(line)); };
    return engine;
}

}  // namespace greet
