#pragma once

#include <sock/export.hpp>
#include <sock/socket.hpp>

#include <poll.h>

#include <any>
#include <map>
#include <system_error>
#include <utility>
#include <vector>

namespace sock SOCK_API {

/// Readiness to wait for, combined with | (Python's selectors.EVENT_READ and EVENT_WRITE).
enum class event : unsigned { none = 0, read = 1, write = 2 };

constexpr event operator|(event a, event b) noexcept {
    return static_cast<event>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}
constexpr event operator&(event a, event b) noexcept {
    return static_cast<event>(static_cast<unsigned>(a) & static_cast<unsigned>(b));
}
constexpr event& operator|=(event& a, event b) noexcept { return a = a | b; }

/// What the selector knows of one descriptor (Python's SelectorKey, without fileobj).
struct selector_key {
    int fd = -1;
    sock::event events = sock::event::none;
    /// Anything the caller wants back with readiness: a callback, a connection's state...
    std::any data;
};

/// Waits for readiness of several blocking sockets or other descriptors at once (Python's
/// selectors.DefaultSelector), without the event engine. Built on poll(2), not epoll: no
/// kernel object to own, nothing goes stale when a registered descriptor is closed, and
/// registering costs no system call; select() is O(n) in registered descriptors, which suits
/// the handful a blocking program watches (thousands of connections belong to the engine).
/// The selector does not own the descriptors. Not thread-safe: one thread uses it at a time.
class selector {
public:
    /// A (key, events) pair select() returns; the key lives until its fd is unregistered.
    using ready_t = std::pair<const selector_key*, sock::event>;

    /// Watches fd for events (read, write or both); data comes back with its key (Python's
    /// register, a C++ keyword). Throws std::invalid_argument on fd < 0 or events outside
    /// read|write, sock::error "File exists" when fd is registered already.
    const selector_key& register_(int fd, sock::event events, std::any data = {});
    const selector_key& register_(const socket& s, sock::event events, std::any data = {});
    /// Non-throwing form: invalid_argument or file_exists in ec; returns nullptr then.
    const selector_key* register_(int fd, sock::event events, std::any data,
                                  std::error_code& ec);
    /// Stops watching fd and returns its key; "No such file or directory" when not registered.
    /// Unregister a descriptor before closing it: its number may come back as another.
    selector_key unregister(int fd);
    selector_key unregister(const socket& s);
    selector_key unregister(int fd, std::error_code& ec);
    /// Changes what fd is watched for and its data (Python's modify: data is replaced too).
    const selector_key& modify(int fd, sock::event events, std::any data = {});
    const selector_key& modify(const socket& s, sock::event events, std::any data = {});
    const selector_key* modify(int fd, sock::event events, std::any data, std::error_code& ec);

    /// Waits until a registered descriptor is ready or the timeout passes (nullopt waits for
    /// ever, zero only looks); returns the ready ones with the events they are ready for, empty
    /// on timeout. An error or hang-up reports every event asked for, so the next call on the
    /// descriptor reports it. EINTR is retried with the time that is left.
    std::vector<ready_t> select(timeout_t timeout = std::nullopt);
    std::vector<ready_t> select(timeout_t timeout, std::error_code& ec);

    /// The key of fd; throws std::out_of_range when fd is not registered (Python's KeyError).
    const selector_key& get_key(int fd) const;
    /// Every key by descriptor (Python's get_map).
    const std::map<int, selector_key>& get_map() const noexcept { return keys_; }

private:
    std::map<int, selector_key> keys_;  // a map: keys stay put while others come and go
    std::vector<::pollfd> polled_;      // reused by select()
};

}  // namespace sock
