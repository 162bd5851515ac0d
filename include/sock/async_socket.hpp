#pragma once

#include <sock/event_loop.hpp>
#include <sock/export.hpp>
#include <sock/socket.hpp>
#include <sock/task.hpp>

#include <coroutine>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace sock SOCK_API {

class async_socket;

namespace detail {

/// One pending operation of an async_socket; the awaiter that co_await creates is one.
struct io_op : timer {
    enum class side : unsigned char { read, write };

    async_socket* owner = nullptr;
    std::coroutine_handle<> waiter;  // set exactly while the op waits in its socket's slot
    std::error_code ec;
    std::error_code* ec_out = nullptr;  // the non-throwing form reports here
    const char* call = "";
    const address* to = nullptr;  // connect, sendto: errors name this address
    cancel_state* cancel = nullptr;  // the waiting task's cancellation, while the op waits
    side dir = side::read;
    /// Performs the system call; false when it would block (the op then waits for readiness).
    bool (*attempt)(io_op&) noexcept = nullptr;

    io_op(async_socket& s, const char* name, side d, bool (*fn)(io_op&) noexcept,
          std::error_code* out) noexcept
        : owner(&s), ec_out(out), call(name), dir(d), attempt(fn) {}
    io_op(const io_op&) = delete;
    io_op& operator=(const io_op&) = delete;
    /// An op destroyed while it waits (its coroutine frame destroyed while suspended) leaves
    /// its socket's slot and the loop's timers, so nothing points at it afterwards.
    ~io_op();
};

}  // namespace detail

/// A socket on an event loop whose calls are awaited: `auto n = co_await conn.recv_into(buf);`.
///
/// The calls keep the blocking API's names and timeout semantics (nullopt waits for ever, zero
/// fails with EAGAIN instead of waiting, positive raises sock::timeout), and each has a form
/// taking std::error_code& that reports instead of throwing. Readiness comes from one
/// edge-triggered epoll registration, made the first time a call has to wait; a call whose
/// data is already there costs only its system call. One reader and one writer may wait at a
/// time. Belongs to the loop of the thread that created it; move it only while nothing waits.
class async_socket final : private io_handler {
public:
    template <class Result>
    class awaiter;

    /// An empty socket (fileno() == -1).
    async_socket() noexcept = default;
    /// Takes s over on loop; s's timeout carries over, except that a non-blocking s (timeout
    /// zero) gets getdefaulttimeout(). The descriptor is made non-blocking.
    explicit async_socket(socket s, event_loop& loop);
    /// Takes s over on this thread's loop.
    explicit async_socket(socket s);
    async_socket(async_socket&& other) noexcept;
    async_socket& operator=(async_socket&& other) noexcept;
    /// Closes the socket; waiters left are never resumed. Inline for the moved-from ones,
    /// which own nothing (a connection's socket is moved several times on its way).
    ~async_socket() {
        if (sock_ || registered_ || reader_ != nullptr || writer_ != nullptr) release();
    }

    /// Receives at most max bytes; "" at end of stream.
    awaiter<std::string> recv(std::size_t max);
    awaiter<std::string> recv(std::size_t max, std::error_code& ec);
    /// Receives into buf; 0 at end of stream.
    awaiter<std::size_t> recv_into(std::span<char> buf);
    awaiter<std::size_t> recv_into(std::span<char> buf, std::error_code& ec);
    /// Sends what the kernel takes at once (waiting until it takes something).
    awaiter<std::size_t> send(std::string_view data);
    awaiter<std::size_t> send(std::string_view data, std::error_code& ec);
    /// Sends all of data; the timeout bounds the whole call. Returns bytes sent: with the
    /// error_code form, what went out before a failure, timeout or cancel, as socket::sendall.
    awaiter<std::size_t> sendall(std::string_view data);
    awaiter<std::size_t> sendall(std::string_view data, std::error_code& ec);
    /// Accepts a connection on a listening socket; the new socket is on the same loop.
    awaiter<async_socket> accept();
    awaiter<async_socket> accept(std::error_code& ec);
    /// Connects to a numeric address or Unix path. Host names are not resolved here: they fail
    /// with invalid_argument, saying so (sock::async_create_connection resolves and connects).
    awaiter<bool> connect(const address& addr);
    awaiter<bool> connect(const address& addr, std::error_code& ec);
    /// Receives one datagram into buf; returns its (possibly truncated) size and sender.
    awaiter<std::pair<std::size_t, address>> recvfrom_into(std::span<char> buf);
    awaiter<std::pair<std::size_t, address>> recvfrom_into(std::span<char> buf,
                                                           std::error_code& ec);
    /// Sends one datagram to a numeric address or Unix path.
    awaiter<std::size_t> sendto(std::string_view data, const address& addr);
    awaiter<std::size_t> sendto(std::string_view data, const address& addr, std::error_code& ec);
    /// Copies what is queued into buf without taking it (MSG_PEEK), once more than `seen`
    /// bytes are queued (or at end of stream): for reading a header whose length is not known
    /// yet, so that what follows it stays in the kernel for whoever reads next.
    awaiter<std::size_t> peek_into(std::span<char> buf, std::size_t seen);
    awaiter<std::size_t> peek_into(std::span<char> buf, std::size_t seen, std::error_code& ec);

    /// For a layer over this socket that makes its own non-blocking calls on fileno() (TLS):
    /// after one of them failed with EAGAIN, waits for the next edge of readiness, bounded by
    /// the timeout and cancelled as the other calls are. True once it came; timeout zero fails
    /// with EAGAIN at once.
    awaiter<bool> wait_readable();
    awaiter<bool> wait_readable(std::error_code& ec);
    /// The same for writing: after a send of one's own failed with EAGAIN.
    awaiter<bool> wait_writable();
    awaiter<bool> wait_writable(std::error_code& ec);
    /// For such a layer: whether a read of its own that comes back short proves the receive
    /// queue empty now (a TCP stream without urgent data; never datagrams, nor after the peer
    /// has shut down), so that it may wait for the next edge without reading again.
    bool short_read_drains() const noexcept;
    /// For such a layer: its read came back short where short_read_drains() held; the socket
    /// counts as not readable until epoll's next edge.
    void mark_drained() noexcept { readable_ = false; }
    /// False when a read now would find nothing: since an EAGAIN or a trusted short read, no
    /// edge came (always true with timeout zero, which never waits for one).
    bool may_be_readable() const noexcept {
        return readable_ || (timeout_ && timeout_->count() == 0);
    }

    /// The client: what a front door's PROXY header said (set_proxied), else the kernel's
    /// peer (raw().getpeername()). sock::server fills it in before the handler runs.
    address getpeername() const;
    address getpeername(std::error_code& ec) const;
    /// What the client connected to: the PROXY header's destination, else raw().getsockname().
    address getsockname() const;
    address getsockname(std::error_code& ec) const;
    /// Records the ends a PROXY header gave, for getpeername and getsockname.
    void set_proxied(address source, address destination);
    /// Whether set_proxied was called: the peer is a front door speaking for a client.
    bool proxied() const noexcept { return proxied_ != nullptr; }

    /// Shuts down a direction now (never waits).
    void shutdown(shut how) { sock_.shutdown(how); }
    void shutdown(shut how, std::error_code& ec) noexcept { sock_.shutdown(how, ec); }
    /// Closes now; waiting calls fail with operation_canceled. Idempotent.
    void close() noexcept;

    /// The timeout for every later call; see sock::socket::settimeout.
    void settimeout(timeout_t t);
    void settimeout(double seconds);
    timeout_t gettimeout() const noexcept { return timeout_; }

    int fileno() const noexcept { return sock_.fileno(); }
    explicit operator bool() const noexcept { return static_cast<bool>(sock_); }
    /// The blocking socket underneath, for options and names (it stays non-blocking).
    socket& raw() noexcept { return sock_; }
    const socket& raw() const noexcept { return sock_; }
    event_loop* loop() const noexcept { return loop_; }

private:
    friend struct detail::io_op;
    template <class Result>
    friend class awaiter;
    struct ops;

    awaiter<bool> edge_wait(detail::io_op::side d, std::error_code* ec) noexcept;
    bool try_now(detail::io_op& op) noexcept;
    bool suspend(detail::io_op& op, std::coroutine_handle<> h,
                 detail::cancel_state* cancel) noexcept;
    /// Takes the waiter out of op as it completes, and out of its task's cancellation.
    static std::coroutine_handle<> detach(detail::io_op& op) noexcept;
    /// The waiting task was cancelled (task_set::cancel_all, wait_for).
    static void on_task_cancel(void* op) noexcept;
    void finish(detail::io_op& op) const;
    void abandon(detail::io_op& op) noexcept;
    static std::error_code native_peer(const address& a, ::sockaddr_storage& out,
                                       ::socklen_t& len) noexcept;
    void on_io(std::uint32_t events) override;
    void on_cancel() override;
    /// Fails the waiting reader and writer with operation_canceled; the caller resumes them.
    void take_waiters(std::coroutine_handle<> (&wake)[2]) noexcept;
    static void on_timeout(timer& t);
    void release() noexcept;

    socket sock_ = socket::invalid();
    event_loop* loop_ = nullptr;
    detail::io_op* reader_ = nullptr;
    detail::io_op* writer_ = nullptr;
    timeout_t timeout_;
    bool registered_ = false;
    bool readable_ = true;  // false after EAGAIN or a trusted short read, until epoll's next edge
    bool writable_ = true;
    bool canceled_ = false;
    bool peer_closed_ = false;  // epoll saw RDHUP, HUP or ERR: reads never block again
    bool urgent_ = false;  // epoll saw EPOLLPRI since the last EAGAIN: see short_read_drains
    // Held apart, so that a connection without a front door pays one null pointer for it.
    std::unique_ptr<std::pair<address, address>> proxied_;

public:
    /// What the calls take besides the socket; unused fields stay empty.
    struct op_args {
        std::span<char> in{};          // recv_into, recvfrom_into, peek_into
        std::size_t seen = 0;          // peek_into: complete only with more queued than this
        std::string_view out{};        // send, sendall, sendto
        std::size_t max = 0;           // recv: the buffer to allocate
        const address* to = nullptr;   // connect, sendto
    };

    /// What co_await on one of the calls above waits on; holds the call's arguments and result.
    template <class Result>
    class awaiter : public detail::io_op {
    public:
        awaiter(const awaiter&) = delete;
        awaiter& operator=(const awaiter&) = delete;

        bool await_ready() noexcept { return owner->try_now(*this); }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> h) noexcept {
            return owner->suspend(*this, h, detail::cancel_of(h));
        }
        Result await_resume() {
            owner->finish(*this);
            if constexpr (std::is_same_v<Result, bool>) return !ec;
            else if constexpr (std::is_same_v<Result, std::string>)
                return ec ? Result() : std::move(result);  // "" on failure, as socket::recv
            else return std::move(result);
        }

    private:
        friend class async_socket;
        friend struct async_socket::ops;
        awaiter(async_socket& s, const char* name, side d, bool (*fn)(io_op&) noexcept,
                std::error_code* report, const op_args& a)
            : io_op(s, name, d, fn, report), in(a.in), out(a.out) {
            if constexpr (std::is_same_v<Result, std::string>) result.resize(a.max);
            if constexpr (std::is_same_v<Result, std::size_t>) result = a.seen;  // peek_into's bar
            if (a.to != nullptr) {
                to = a.to;
                ec = native_peer(*a.to, peer, peer_len);
            }
        }

        Result result{};  // sendall: bytes sent so far, reported even when it fails; peek_into:
                          // `seen` until it completes
        std::span<char> in;
        std::string_view out;
        ::sockaddr_storage peer{};  // recvfrom, sendto, connect
        ::socklen_t peer_len = 0;
        bool started = false;       // connect: connect(2) has been called
    };
};

inline detail::io_op::~io_op() {
    if (waiter) owner->abandon(*this);
}

}  // namespace sock
