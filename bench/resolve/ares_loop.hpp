#pragma once

// A c-ares channel driven by a sock::event_loop, for the resolution benchmark only (not part
// of the library): the channel tells us which sockets it wants watched (ARES_OPT_SOCK_STATE_CB)
// and we watch them on the loop as io_handlers; one loop timer stands for ares_timeout; events
// and expiries go to ares_process_fd. A coroutine awaits `resolver.resolve(host, port)`, which
// returns what sock::getaddrinfo would and throws sock::gaierror as it does.
//
// Beware (c-ares 1.18, Debian 12): ares_getaddrinfo answers from /etc/hosts synchronously,
// inside the call, re-reading and parsing the whole file each time (caching came in 1.22);
// so on this path the "asynchronous" resolver blocks the loop as the blocking one does.

#include <sock/address.hpp>
#include <sock/event_loop.hpp>

#include <ares.h>

#include <coroutine>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace bench {

class ares_resolver;

/// What `co_await resolver.resolve(...)` waits on. Destroyed while it waits (its frame
/// destroyed), it leaves the look-up to finish and drops the answer.
class ares_lookup {
public:
    ares_lookup(ares_resolver& r, std::string host, std::uint16_t port, sock::family fam,
                sock::kind type, int flags);
    ares_lookup(const ares_lookup&) = delete;
    ares_lookup& operator=(const ares_lookup&) = delete;
    ~ares_lookup();

    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h);
    std::vector<sock::addrinfo> await_resume();

private:
    struct request;  // what c-ares's callback gets: outlives this awaiter if it must
    static void on_answer(void* arg, int status, int timeouts, ares_addrinfo* res) noexcept;

    ares_resolver& resolver_;
    std::string host_;
    std::uint16_t port_;
    sock::family family_;
    sock::kind type_;
    int flags_;
    request* pending_ = nullptr;
    std::coroutine_handle<> waiter_;
    bool suspending_ = false;  // inside await_suspend: an answer now must not resume
    bool done_ = false;
    int status_ = ARES_SUCCESS;
    std::vector<sock::addrinfo> result_;
};

/// One c-ares channel on one event_loop (this thread's). Destroy it only after every look-up
/// has ended or its awaiting frame is gone.
class ares_resolver {
public:
    /// ares_init_options with the system's configuration (resolv.conf, nsswitch.conf's
    /// "files"/"dns", /etc/hosts) and our socket-state callback, plus the options of
    /// `optmask` in `options` (ARES_OPT_TIMEOUTMS, ARES_OPT_TRIES...); throws std::runtime_error.
    explicit ares_resolver(sock::event_loop& loop, const ares_options* options = nullptr,
                           int optmask = 0);
    ~ares_resolver();
    ares_resolver(const ares_resolver&) = delete;
    ares_resolver& operator=(const ares_resolver&) = delete;

    /// `co_await r.resolve("example.com", 443)`: flags are AI_* values (CANONNAME,
    /// NUMERICHOST, PASSIVE, NUMERICSERV, V4MAPPED, ALL, ADDRCONFIG).
    ares_lookup resolve(std::string host, std::uint16_t port,
                        sock::family fam = sock::family::unspec,
                        sock::kind type = sock::kind::stream, int flags = 0) {
        return ares_lookup(*this, std::move(host), port, fam, type, flags);
    }

    ares_channel channel() const noexcept { return channel_; }
    /// Descriptors the channel has on the loop now.
    std::size_t sockets() const noexcept { return watches_.size(); }

private:
    friend class ares_lookup;
    struct watch;
    struct alarm : sock::timer {
        ares_resolver* owner = nullptr;
    };
    static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) noexcept;
    /// Re-arms the loop timer from ares_timeout, or disarms it when nothing is pending.
    void update_timer() noexcept;

    sock::event_loop& loop_;
    ares_channel channel_ = nullptr;
    std::unordered_map<int, std::unique_ptr<watch>> watches_;
    alarm alarm_;
};

}  // namespace bench
