#include <sock/async_socket.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <utility>

namespace sock SOCK_API {

namespace {

// EPOLLPRI: urgent data, which makes a TCP read stop short (see short_read_drains).
constexpr std::uint32_t watched_events = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDHUP | EPOLLET;

bool would_block(int e) noexcept { return e == EAGAIN || e == EWOULDBLOCK; }

std::error_code errno_code() noexcept { return {errno, std::system_category()}; }

// A host name given where the engine needs a numeric address: equal to invalid_argument, with
// a message that says what to do about it.
class name_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "sock.async_socket"; }
    std::string message(int) const override {
        return "host names are not resolved here; use sock::async_create_connection or "
               "sock::async_getaddrinfo";
    }
    std::error_condition default_error_condition(int) const noexcept override {
        return std::errc::invalid_argument;
    }
};

const name_category_impl name_category{};

}  // namespace

// The system calls behind each awaiter. Each returns false only when the call would block;
// otherwise the op is complete, with ec set on failure.
struct async_socket::ops {
    template <class R>
    static awaiter<R>& as(detail::io_op& op) noexcept {
        return static_cast<awaiter<R>&>(op);
    }

    static bool recv_into(detail::io_op& op) noexcept {
        auto& a = as<std::size_t>(op);
        return read(op, a.in, a.result);
    }

    static bool recv_string(detail::io_op& op) noexcept {
        auto& a = as<std::string>(op);
        std::size_t n = 0;
        if (!read(op, std::span<char>(a.result.data(), a.result.size()), n)) return false;
        a.result.resize(n);
        return true;
    }

    static bool read(detail::io_op& op, std::span<char> in, std::size_t& n) noexcept {
        auto& s = *op.owner;
        for (;;) {
            const auto got = ::recv(s.sock_.fileno(), in.data(), in.size(), 0);
            if (got >= 0) {
                n = static_cast<std::size_t>(got);
                // Where a short read proves the queue empty, skip the EAGAIN read next time
                // and wait for epoll's next edge instead.
                if (got > 0 && n < in.size() && s.short_read_drains()) s.readable_ = false;
                return true;
            }
            if (errno == EINTR) continue;
            if (would_block(errno)) {
                s.urgent_ = false;  // drained: urgent data arriving from now on brings its edge
                return false;
            }
            op.ec = errno_code();
            return true;
        }
    }

    static bool peek(detail::io_op& op) noexcept {
        auto& a = as<std::size_t>(op);
        auto& s = *op.owner;
        for (;;) {
            const auto got = ::recv(s.sock_.fileno(), a.in.data(), a.in.size(), MSG_PEEK);
            // Nothing new since the last look: wait for the edge that more data brings. The
            // queue is not empty, so `readable_` must not be left false for the next reader:
            // try_now clears it only when this is retried, and on_io sets it on each edge.
            // Once the peer has shut down, nothing new will come: report what there is.
            if (got > 0 && static_cast<std::size_t>(got) <= a.result &&
                static_cast<std::size_t>(got) < a.in.size() && !s.peer_closed_)
                return false;
            if (got >= 0) {
                a.result = static_cast<std::size_t>(got);
                return true;
            }
            if (errno == EINTR) continue;
            if (would_block(errno)) {
                s.urgent_ = false;
                return false;
            }
            op.ec = errno_code();
            return true;
        }
    }

    static bool write(detail::io_op& op, std::string_view out, std::size_t& n) noexcept {
        auto& s = *op.owner;
        for (;;) {
            const auto sent = ::send(s.sock_.fileno(), out.data(), out.size(), MSG_NOSIGNAL);
            if (sent >= 0) {
                n = static_cast<std::size_t>(sent);
                if (n < out.size()) s.writable_ = false;  // the send buffer is full
                return true;
            }
            if (errno == EINTR) continue;
            if (would_block(errno)) return false;
            op.ec = errno_code();
            return true;
        }
    }

    static bool send(detail::io_op& op) noexcept {
        auto& a = as<std::size_t>(op);
        return write(op, a.out, a.result);
    }

    static bool sendall(detail::io_op& op) noexcept {
        // The count grows as bytes go out, so a timeout or cancel, which ends the call from
        // outside, reports what was sent, as the blocking sendall does.
        auto& a = as<std::size_t>(op);
        while (a.result < a.out.size()) {
            std::size_t n = 0;
            if (!write(op, a.out.substr(a.result), n)) return false;
            if (op.ec) break;
            a.result += n;
        }
        return true;
    }

    static bool accept(detail::io_op& op) noexcept {
        auto& a = as<async_socket>(op);
        auto& s = *op.owner;
        for (;;) {
            const int fd = ::accept4(s.sock_.fileno(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (fd >= 0) {
                a.result = async_socket(
                    socket::adopt(fd, s.sock_.family(), s.sock_.type(), s.sock_.proto(), true),
                    *s.loop_);
                return true;
            }
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (would_block(errno)) return false;
            op.ec = errno_code();
            return true;
        }
    }

    static bool connect(detail::io_op& op) noexcept {
        auto& a = as<bool>(op);
        auto& s = *op.owner;
        const int fd = s.sock_.fileno();
        if (!a.started) {
            a.started = true;
            if (::connect(fd, reinterpret_cast<const ::sockaddr*>(&a.peer), a.peer_len) == 0)
                return true;
            // EAGAIN is no "in progress": a Unix listener with a full queue refuses at once.
            if (errno != EINPROGRESS && errno != EINTR) {
                op.ec = errno_code();
                return true;
            }
            s.writable_ = false;  // writable again once the handshake ends
            return false;
        }
        int err = 0;
        ::socklen_t len = sizeof err;
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
        if (err == EINPROGRESS || err == EALREADY) return false;
        if (err != 0) op.ec = {err, std::system_category()};
        return true;
    }

    static bool recvfrom(detail::io_op& op) noexcept {
        auto& a = as<std::pair<std::size_t, address>>(op);
        auto& s = *op.owner;
        for (;;) {
            a.peer_len = sizeof a.peer;
            const auto got = ::recvfrom(s.sock_.fileno(), a.in.data(), a.in.size(), 0,
                                        reinterpret_cast<::sockaddr*>(&a.peer), &a.peer_len);
            if (got >= 0) {
                try {
                    a.result = {static_cast<std::size_t>(got),
                                address::from_native(reinterpret_cast<const ::sockaddr*>(&a.peer),
                                                     a.peer_len)};
                } catch (const std::bad_alloc&) {
                    op.ec = std::make_error_code(std::errc::not_enough_memory);
                }
                return true;
            }
            if (errno == EINTR) continue;
            if (would_block(errno)) return false;
            op.ec = errno_code();
            return true;
        }
    }

    static bool sendto(detail::io_op& op) noexcept {
        auto& a = as<std::size_t>(op);
        auto& s = *op.owner;
        for (;;) {
            const auto sent = ::sendto(s.sock_.fileno(), a.out.data(), a.out.size(), MSG_NOSIGNAL,
                                       reinterpret_cast<const ::sockaddr*>(&a.peer), a.peer_len);
            if (sent >= 0) {
                a.result = static_cast<std::size_t>(sent);
                return true;
            }
            if (errno == EINTR) continue;
            if (would_block(errno)) return false;
            op.ec = errno_code();
            return true;
        }
    }

    // wait_readable, wait_writable: the caller's own call has just failed with EAGAIN, so the
    // op starts with its side not ready (see edge_wait) and waits; the edge completes it.
    static bool edge(detail::io_op& op) noexcept {
        const auto& t = op.owner->timeout_;
        if (t && t->count() == 0) op.ec = std::make_error_code(std::errc::resource_unavailable_try_again);
        return true;
    }
};

// -- lifetime ---------------------------------------------------------------------------------

async_socket::async_socket(socket s, event_loop& loop) : sock_(std::move(s)), loop_(&loop) {
    timeout_ = sock_.gettimeout();
    // The descriptor is always non-blocking; timeouts are kept here and enforced by timers.
    if (timeout_ && timeout_->count() == 0) timeout_ = getdefaulttimeout();
    else sock_.setblocking(false);
}

async_socket::async_socket(socket s)
    : async_socket(std::move(s), [] () -> event_loop& {
          auto* loop = event_loop::current();
          if (loop == nullptr) throw std::logic_error("async_socket: this thread has no event_loop");
          return *loop;
      }()) {}

async_socket::async_socket(async_socket&& o) noexcept
    : sock_(std::move(o.sock_)),
      loop_(o.loop_),
      timeout_(o.timeout_),
      registered_(std::exchange(o.registered_, false)),
      readable_(o.readable_),
      writable_(o.writable_),
      canceled_(o.canceled_),
      peer_closed_(o.peer_closed_),
      urgent_(o.urgent_),
      proxied_(std::move(o.proxied_)) {
    if (registered_) loop_->rebind(sock_.fileno(), *this);
}

async_socket& async_socket::operator=(async_socket&& o) noexcept {
    if (this != &o) {
        release();
        sock_ = std::move(o.sock_);
        loop_ = o.loop_;
        timeout_ = o.timeout_;
        registered_ = std::exchange(o.registered_, false);
        readable_ = o.readable_;
        writable_ = o.writable_;
        canceled_ = o.canceled_;
        peer_closed_ = o.peer_closed_;
        urgent_ = o.urgent_;
        proxied_ = std::move(o.proxied_);
        if (registered_) loop_->rebind(sock_.fileno(), *this);
    }
    return *this;
}

void async_socket::release() noexcept {
    // Waiters still here are never resumed; their ops no longer belong to this socket.
    for (auto* op : {std::exchange(reader_, nullptr), std::exchange(writer_, nullptr)}) {
        if (op == nullptr) continue;
        loop_->cancel(*op);
        detach(*op);
    }
    if (registered_) {
        loop_->forget(sock_.fileno());
        registered_ = false;
    }
    sock_.close();
}

void async_socket::close() noexcept {
    // Waiters fail with operation_canceled, but resume only once the descriptor is gone: a
    // resumed coroutine may destroy this socket, so nothing of it is touched after that.
    std::coroutine_handle<> wake[2];
    take_waiters(wake);
    release();
    canceled_ = false;
    for (auto h : wake)
        if (h) h.resume();
}

void async_socket::settimeout(timeout_t t) {
    if (t && t->count() < 0) throw std::invalid_argument("settimeout: timeout must be >= 0");
    timeout_ = t;
}

void async_socket::settimeout(double seconds) {
    if (!(seconds >= 0) || seconds != seconds || seconds > 1e12)
        throw std::invalid_argument("settimeout: timeout must be a finite number >= 0");
    timeout_ = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(seconds));
}

address async_socket::getpeername() const {
    return proxied_ ? proxied_->first : sock_.getpeername();
}

address async_socket::getpeername(std::error_code& ec) const {
    if (!proxied_) return sock_.getpeername(ec);
    ec.clear();
    return proxied_->first;
}

address async_socket::getsockname() const {
    return proxied_ ? proxied_->second : sock_.getsockname();
}

address async_socket::getsockname(std::error_code& ec) const {
    if (!proxied_) return sock_.getsockname(ec);
    ec.clear();
    return proxied_->second;
}

void async_socket::set_proxied(address source, address destination) {
    proxied_ = std::make_unique<std::pair<address, address>>(std::move(source), std::move(destination));
}

// -- waiting ----------------------------------------------------------------------------------

bool async_socket::try_now(detail::io_op& op) noexcept {
    if (op.ec) return true;  // the arguments were already wrong
    if (canceled_ || !sock_) {
        op.ec = std::make_error_code(std::errc::operation_canceled);
        return true;
    }
    bool& ready = op.dir == detail::io_op::side::read ? readable_ : writable_;
    // Timeout zero never registers with epoll, so no edge would ever set `ready` again:
    // always make the call, as a non-blocking socket does.
    const bool never_waits = timeout_ && timeout_->count() == 0;
    if (!ready && !never_waits) return false;
    if (op.attempt(op)) return true;
    ready = false;
    return false;
}

bool async_socket::suspend(detail::io_op& op, std::coroutine_handle<> h,
                           detail::cancel_state* cancel) noexcept {
    auto*& slot = op.dir == detail::io_op::side::read ? reader_ : writer_;
    if (cancel != nullptr && cancel->requested) {
        cancel->requested = false;  // one cancellation fails one wait, as in asyncio
        op.ec = std::make_error_code(std::errc::operation_canceled);
        return false;
    }
    if (timeout_ && timeout_->count() == 0) {
        op.ec = std::make_error_code(std::errc::resource_unavailable_try_again);
        return false;
    }
    if (slot != nullptr) {
        op.ec = std::make_error_code(std::errc::operation_in_progress);
        return false;
    }
    if (!registered_) {
        try {
            loop_->add(sock_.fileno(), watched_events, *this);
        } catch (const std::system_error& e) {
            op.ec = e.code();
            return false;
        }
        registered_ = true;
    }
    op.waiter = h;
    slot = &op;
    if (timeout_) {
        op.fire = &async_socket::on_timeout;
        loop_->start(op, *timeout_);
    }
    if (cancel != nullptr) {
        op.cancel = cancel;
        cancel->set(&async_socket::on_task_cancel, &op);
    }
    return true;
}

std::coroutine_handle<> async_socket::detach(detail::io_op& op) noexcept {
    if (op.cancel != nullptr) std::exchange(op.cancel, nullptr)->clear(&op);
    return std::exchange(op.waiter, {});
}

void async_socket::on_task_cancel(void* p) noexcept {
    auto& op = *static_cast<detail::io_op*>(p);
    // request() has already taken op out of the state; the cancellation is used up here.
    std::exchange(op.cancel, nullptr)->requested = false;
    auto& s = *op.owner;
    (op.dir == detail::io_op::side::read ? s.reader_ : s.writer_) = nullptr;
    s.loop_->cancel(op);
    op.ec = std::make_error_code(std::errc::operation_canceled);
    std::exchange(op.waiter, {}).resume();
}

void async_socket::finish(detail::io_op& op) const {
    if (!op.ec) return;
    if (op.ec_out != nullptr) {
        *op.ec_out = op.ec;
        return;
    }
    // As the blocking socket does, name the address a call was given, else this socket's.
    throw_error(op.ec, std::string(op.call) + " " +
                           (op.to != nullptr ? op.to->to_string() : sock_.describe()));
}

void async_socket::abandon(detail::io_op& op) noexcept {
    (op.dir == detail::io_op::side::read ? reader_ : writer_) = nullptr;
    loop_->cancel(op);
    detach(op);
}

std::error_code async_socket::native_peer(const address& a, ::sockaddr_storage& out,
                                          ::socklen_t& len) noexcept {
    if (a.to_native(out, len)) return {};
    // A host and port that is not numeric is a name; anything else is malformed.
    if (!a.empty() && !a.is_unix()) return {1, name_category};
    return std::make_error_code(std::errc::invalid_argument);
}

// Whether a short stream read proves the receive queue empty, so that the next read can wait
// for epoll's next edge without a read that fails with EAGAIN first. Edge-triggered epoll
// only reports arrivals, so trusting a short read that left bytes queued loses the wake-up.
// - Never for datagrams (short by nature) nor once the peer has shut down (its FIN may have
//   come with the data, in an edge already consumed).
// - Before registering with epoll, always: registering polls the current state, so bytes left
//   queued are reported then (the greeting path: a request read whole, then a wait).
// - Once registered, only for TCP. Linux's tcp_recvmsg stops short with bytes queued only at
//   the urgent mark (MSG_OOB), which epoll reports as EPOLLPRI in the edge that brought it:
//   urgent_ then withholds trust until a read drains the queue. Other streams give no such
//   promise: a Unix stream read stops at each message carrying descriptors (SCM_RIGHTS) or,
//   with SO_PASSCRED, other credentials. (Kernel TLS, a ULP set through raw(), stops at
//   record types and is not supported here.)
bool async_socket::short_read_drains() const noexcept {
    if (peer_closed_ || sock_.type() != sock::kind::stream) return false;
    if (!registered_) return true;
    const bool tcp = (sock_.family() == family::inet || sock_.family() == family::inet6) &&
                     (sock_.proto() == 0 || sock_.proto() == IPPROTO_TCP);
    return tcp && !urgent_;
}

void async_socket::on_io(std::uint32_t events) {
    std::coroutine_handle<> wake[2];
    auto complete = [&](detail::io_op*& slot, bool& ready, int i) {
        ready = true;
        if (slot == nullptr) return;
        if (!slot->attempt(*slot)) {
            ready = false;
            return;
        }
        loop_->cancel(*slot);
        wake[i] = detach(*slot);
        slot = nullptr;
    };
    if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) peer_closed_ = true;
    if ((events & EPOLLPRI) != 0) urgent_ = true;
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) complete(reader_, readable_, 0);
    if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0) complete(writer_, writable_, 1);
    // Resuming may destroy this socket: touch nothing of it from here on.
    if (wake[0]) wake[0].resume();
    if (wake[1]) wake[1].resume();
}

void async_socket::take_waiters(std::coroutine_handle<> (&wake)[2]) noexcept {
    int i = 0;
    for (auto** slot : {&reader_, &writer_}) {
        if (*slot == nullptr) continue;
        (*slot)->ec = std::make_error_code(std::errc::operation_canceled);
        loop_->cancel(**slot);
        wake[i++] = detach(**slot);
        *slot = nullptr;
    }
}

void async_socket::on_cancel() {
    canceled_ = true;
    std::coroutine_handle<> wake[2];
    take_waiters(wake);
    // Resuming may destroy this socket: touch nothing of it from here on.
    for (auto h : wake)
        if (h) h.resume();
}

void async_socket::on_timeout(timer& t) {
    auto& op = static_cast<detail::io_op&>(t);
    op.ec = timeout_error();
    auto& s = *op.owner;
    (op.dir == detail::io_op::side::read ? s.reader_ : s.writer_) = nullptr;
    detach(op).resume();
}

// -- the calls --------------------------------------------------------------------------------

using side = detail::io_op::side;

async_socket::awaiter<std::string> async_socket::recv(std::size_t max) {
    return awaiter<std::string>(*this, "recv", side::read, &ops::recv_string, nullptr, {.max = max});
}
async_socket::awaiter<std::string> async_socket::recv(std::size_t max, std::error_code& ec) {
    return awaiter<std::string>(*this, "recv", side::read, &ops::recv_string, &ec, {.max = max});
}
async_socket::awaiter<std::size_t> async_socket::recv_into(std::span<char> buf) {
    return awaiter<std::size_t>(*this, "recv", side::read, &ops::recv_into, nullptr, {.in = buf});
}
async_socket::awaiter<std::size_t> async_socket::recv_into(std::span<char> buf, std::error_code& ec) {
    return awaiter<std::size_t>(*this, "recv", side::read, &ops::recv_into, &ec, {.in = buf});
}
async_socket::awaiter<std::size_t> async_socket::send(std::string_view data) {
    return awaiter<std::size_t>(*this, "send", side::write, &ops::send, nullptr, {.out = data});
}
async_socket::awaiter<std::size_t> async_socket::send(std::string_view data, std::error_code& ec) {
    return awaiter<std::size_t>(*this, "send", side::write, &ops::send, &ec, {.out = data});
}
async_socket::awaiter<std::size_t> async_socket::sendall(std::string_view data) {
    return awaiter<std::size_t>(*this, "sendall", side::write, &ops::sendall, nullptr, {.out = data});
}
async_socket::awaiter<std::size_t> async_socket::sendall(std::string_view data, std::error_code& ec) {
    return awaiter<std::size_t>(*this, "sendall", side::write, &ops::sendall, &ec, {.out = data});
}
async_socket::awaiter<async_socket> async_socket::accept() {
    return awaiter<async_socket>(*this, "accept", side::read, &ops::accept, nullptr, {});
}
async_socket::awaiter<async_socket> async_socket::accept(std::error_code& ec) {
    return awaiter<async_socket>(*this, "accept", side::read, &ops::accept, &ec, {});
}
async_socket::awaiter<bool> async_socket::connect(const address& addr) {
    return awaiter<bool>(*this, "connect", side::write, &ops::connect, nullptr, {.to = &addr});
}
async_socket::awaiter<bool> async_socket::connect(const address& addr, std::error_code& ec) {
    return awaiter<bool>(*this, "connect", side::write, &ops::connect, &ec, {.to = &addr});
}
async_socket::awaiter<std::pair<std::size_t, address>> async_socket::recvfrom_into(std::span<char> buf) {
    return awaiter<std::pair<std::size_t, address>>(*this, "recvfrom", side::read, &ops::recvfrom,
                                                    nullptr, {.in = buf});
}
async_socket::awaiter<std::pair<std::size_t, address>> async_socket::recvfrom_into(
    std::span<char> buf, std::error_code& ec) {
    return awaiter<std::pair<std::size_t, address>>(*this, "recvfrom", side::read, &ops::recvfrom,
                                                    &ec, {.in = buf});
}
async_socket::awaiter<std::size_t> async_socket::peek_into(std::span<char> buf, std::size_t seen) {
    return awaiter<std::size_t>(*this, "recv", side::read, &ops::peek, nullptr, {.in = buf, .seen = seen});
}
async_socket::awaiter<std::size_t> async_socket::peek_into(std::span<char> buf, std::size_t seen,
                                                           std::error_code& ec) {
    return awaiter<std::size_t>(*this, "recv", side::read, &ops::peek, &ec, {.in = buf, .seen = seen});
}
async_socket::awaiter<bool> async_socket::edge_wait(side d, std::error_code* ec) noexcept {
    // Not ready until epoll's next edge: the edge that came before the caller's EAGAIN (if
    // any) is spent, and registering first (or the next edge) reports the current state.
    (d == side::read ? readable_ : writable_) = false;
    return awaiter<bool>(*this, d == side::read ? "wait_readable" : "wait_writable", d, &ops::edge,
                         ec, {});
}
async_socket::awaiter<bool> async_socket::wait_readable() { return edge_wait(side::read, nullptr); }
async_socket::awaiter<bool> async_socket::wait_readable(std::error_code& ec) {
    return edge_wait(side::read, &ec);
}
async_socket::awaiter<bool> async_socket::wait_writable() { return edge_wait(side::write, nullptr); }
async_socket::awaiter<bool> async_socket::wait_writable(std::error_code& ec) {
    return edge_wait(side::write, &ec);
}

async_socket::awaiter<std::size_t> async_socket::sendto(std::string_view data, const address& addr) {
    return awaiter<std::size_t>(*this, "sendto", side::write, &ops::sendto, nullptr,
                                {.out = data, .to = &addr});
}
async_socket::awaiter<std::size_t> async_socket::sendto(std::string_view data, const address& addr,
                                                        std::error_code& ec) {
    return awaiter<std::size_t>(*this, "sendto", side::write, &ops::sendto, &ec,
                                {.out = data, .to = &addr});
}

}  // namespace sock
