#pragma once

// What a service needs from systemd, by its documented protocols (no libsystemd): socket
// activation (sd_listen_fds_with_names(3)), readiness and status (sd_notify(3)), and the
// watchdog's interval (sd_watchdog_enabled(3)). Outside systemd each is a harmless no-op.

#include <sock/export.hpp>
#include <sock/socket.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace sock SOCK_API {

/// A socket the service manager passed, and its name (FileDescriptorName= in the socket
/// unit, else the unit's name; "unknown" when $LISTEN_FDNAMES is unset).
struct inherited_socket {
    socket sock;
    std::string name;
};

/// The sockets passed by socket activation: descriptors 3 to 2 + $LISTEN_FDS when
/// $LISTEN_PID is this process, named by $LISTEN_FDNAMES (colon-separated), made
/// close-on-exec and owned by the result. Empty when $LISTEN_PID is unset or another process.
/// Removes the three variables in every case, so children never take them for theirs: call
/// it once, before starting threads (unsetenv). Throws std::invalid_argument naming the
/// variable when a value is garbage, sock::error when a descriptor is closed or no socket.
std::vector<inherited_socket> listen_fds();

/// Sends state ("READY=1", "STATUS=...", "STOPPING=1", "WATCHDOG=1", several joined by '\n')
/// in one datagram to $NOTIFY_SOCKET, a path or an abstract name ('@'). Returns false, doing
/// nothing, when $NOTIFY_SOCKET is unset; throws sock::error naming the socket if sending fails.
bool notify(std::string_view state);
/// As notify(state), setting ec instead of throwing (invalid_argument for a garbage variable).
bool notify(std::string_view state, std::error_code& ec) noexcept;

/// How often the service manager wants "WATCHDOG=1" ($WATCHDOG_USEC; send at half of it);
/// nullopt without a watchdog or when $WATCHDOG_PID is another process. Throws
/// std::invalid_argument when $WATCHDOG_USEC is not a number of microseconds above zero.
std::optional<std::chrono::microseconds> watchdog_interval();

}  // namespace sock
