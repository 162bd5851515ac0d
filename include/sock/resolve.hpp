#pragma once

#include <sock/address.hpp>
#include <sock/async_socket.hpp>
#include <sock/create.hpp>
#include <sock/event_loop.hpp>
#include <sock/export.hpp>
#include <sock/socket.hpp>
#include <sock/task.hpp>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace sock SOCK_API {

namespace detail {
struct lookup;  // one look-up, shared by its awaiter and the resolver thread that runs it
}  // namespace detail

/// What `co_await sock::async_getaddrinfo(...)` waits on.
class getaddrinfo_awaiter {
public:
    getaddrinfo_awaiter(std::string host, std::uint16_t port, sock::family fam, sock::kind type,
                        int flags, timeout_t timeout, std::error_code* ec);
    getaddrinfo_awaiter(const getaddrinfo_awaiter&) = delete;
    getaddrinfo_awaiter& operator=(const getaddrinfo_awaiter&) = delete;
    /// Destroyed while it waits (its frame destroyed), it drops the look-up's result.
    ~getaddrinfo_awaiter();

    bool await_ready();
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        return suspend(h, detail::cancel_of(h));
    }
    std::vector<addrinfo> await_resume();

private:
    friend struct detail::lookup;
    struct alarm : timer {
        getaddrinfo_awaiter* self = nullptr;
    };

    bool suspend(std::coroutine_handle<> h, detail::cancel_state* cancel);
    void deliver(std::vector<addrinfo> result, std::error_code ec) noexcept;
    void give_up(std::error_code why) noexcept;
    void detach() noexcept;
    static void on_task_cancel(void* self) noexcept;

    std::string host_;
    std::uint16_t port_;
    sock::family family_;
    sock::kind type_;
    int flags_;
    timeout_t timeout_;
    std::error_code* ec_out_;
    std::error_code ec_;
    std::vector<addrinfo> result_;
    std::shared_ptr<detail::lookup> job_;
    std::coroutine_handle<> waiter_;
    detail::cancel_state* cancel_ = nullptr;
    event_loop* loop_ = nullptr;
    alarm alarm_;
};

/// `co_await sock::async_getaddrinfo("example.com", 443)`: sock::getaddrinfo without blocking
/// the loop. Numeric hosts are answered at once; names are looked up by the system's own
/// getaddrinfo (so /etc/hosts, nsswitch.conf and resolv.conf apply as they do to it) on a small
/// pool of resolver threads, and the answer resumes the task on its loop. timeout bounds the
/// wait (sock::timeout), and cancelling the task ends the wait with operation_canceled; in both
/// cases the look-up itself finishes on its thread and its answer is dropped. Failures throw
/// gaierror as sock::getaddrinfo does. Needs this thread's event_loop.
getaddrinfo_awaiter async_getaddrinfo(std::string host, std::uint16_t port,
                                      sock::family fam = sock::family::unspec,
                                      sock::kind type = sock::kind::stream, int flags = 0,
                                      timeout_t timeout = std::nullopt);
/// Non-throwing form: failures, timeouts and cancellation are reported in ec, with no answer.
getaddrinfo_awaiter async_getaddrinfo(std::string host, std::uint16_t port, sock::family fam,
                                      sock::kind type, int flags, timeout_t timeout,
                                      std::error_code& ec);

/// The most resolver threads async_getaddrinfo runs at once (default 4; at least 1). Threads
/// start when look-ups wait and end after a few idle seconds. More help a program whose
/// look-ups wait on DNS; for names in /etc/hosts they only compete with the loop for the CPU.
void set_resolver_threads(std::size_t n);

/// `co_await sock::async_create_connection({"example.com", 80}, 5s)`: create_connection on
/// the loop. The name is resolved with async_getaddrinfo and its addresses raced with Happy
/// Eyeballs (RFC 8305) exactly as the blocking create_connection does: families alternating,
/// the next attempt started when one fails or after happy_eyeballs_delay, the first to connect
/// wins and the others are closed. timeout bounds the whole call, resolution included, and
/// becomes the socket's timeout. When all fail, the error names each address and its cause.
/// Cancelling the task stops every attempt with operation_canceled.
task<async_socket> async_create_connection(
    address addr, timeout_t timeout = getdefaulttimeout(),
    std::optional<address> source = std::nullopt,
    timeout_t happy_eyeballs_delay = default_happy_eyeballs_delay);
/// Non-throwing form: reports the failure in ec and returns an empty async_socket.
task<async_socket> async_create_connection(address addr, timeout_t timeout,
                                           std::optional<address> source,
                                           timeout_t happy_eyeballs_delay,
                                           std::error_code& ec);

}  // namespace sock
