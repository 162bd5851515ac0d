#pragma once

#include <sock/address.hpp>
#include <sock/error.hpp>
#include <sock/export.hpp>
#include <sock/options.hpp>

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace sock SOCK_API {

/// A socket timeout as Python has it: nullopt blocks, zero never waits, positive bounds a call.
using timeout_t = std::optional<std::chrono::nanoseconds>;

/// Which direction shutdown() closes (Python's SHUT_RD, SHUT_WR, SHUT_RDWR).
enum class shut : int { rd = SHUT_RD, wr = SHUT_WR, rdwr = SHUT_RDWR };

/// The timeout new sockets start with (Python's socket.setdefaulttimeout); nullopt at start.
void setdefaulttimeout(timeout_t t);
/// The timeout new sockets start with (Python's socket.getdefaulttimeout).
timeout_t getdefaulttimeout() noexcept;

/// One ancillary data item (Python's (cmsg_level, cmsg_type, cmsg_data) tuple), e.g.
/// {SOL_SOCKET, SCM_RIGHTS, bytes of ints} or {SOL_SOCKET, SCM_CREDENTIALS, bytes of a ucred}.
struct ancillary {
    int level = 0;
    int type = 0;
    std::string data;
    friend bool operator==(const ancillary&, const ancillary&) = default;
};

/// What recvmsg returns (Python's (data, ancdata, msg_flags, address) tuple).
struct message {
    std::string data;
    /// Items that came with the data; descriptors (SCM_RIGHTS) in them are close-on-exec and
    /// the caller's to close.
    std::vector<ancillary> ancdata;
    /// MSG_TRUNC, MSG_CTRUNC (ancdata cut short), MSG_EOR, MSG_OOB...
    int msg_flags = 0;
    /// The sender; empty on connected stream sockets.
    address addr;
};

/// A move-only owner of one descriptor, closed when dropped. This class owns the descriptor;
/// release() gives it up (socket::from_fd(f.release()) makes a socket of a received one).
class owned_fd {
public:
    owned_fd() noexcept = default;
    /// Owns fd from now on (-1 owns nothing).
    explicit owned_fd(int fd) noexcept : fd_(fd) {}
    owned_fd(owned_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    owned_fd& operator=(owned_fd&& other) noexcept {
        if (this != &other) {
            close();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    owned_fd(const owned_fd&) = delete;
    owned_fd& operator=(const owned_fd&) = delete;
    ~owned_fd() { close(); }
    /// The descriptor, or -1.
    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    /// Gives up ownership and returns the descriptor; -1 if none.
    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
    /// Closes the descriptor now; calling it again does nothing.
    void close() noexcept;

private:
    int fd_ = -1;
};

/// What recv_fds returns (Python 3.9's (data, fds, msg_flags, address)): the descriptors are
/// owned, close-on-exec, and closed with the result unless released.
struct fds_message {
    std::string data;
    std::vector<owned_fd> fds;
    /// MSG_CTRUNC when more descriptors came than maxfds: the extra ones were closed unseen.
    int msg_flags = 0;
    address addr;
};

/// A move-only owner of one socket descriptor, with the Python socket object's methods.
///
/// Every failing call throws sock::error (or sock::timeout / sock::gaierror) naming the call
/// and the address; each also has a form taking std::error_code& that never throws.
/// Descriptors are close-on-exec, sends never raise SIGPIPE, EINTR is retried.
class socket {
public:
    /// Creates a socket (Python's socket.socket(family, type, proto)).
    explicit socket(sock::family fam = sock::family::inet, sock::kind type = sock::kind::stream,
                    int proto = 0);
    /// Adopts an open descriptor and owns it from now on (Python's socket(fileno=fd)).
    static socket from_fd(int fd);
    /// Owns fd, whose family and type the caller knows: no system call (for accept loops).
    /// `nonblocking` must tell the truth about O_NONBLOCK; it sets timeout zero or none.
    static socket adopt(int fd, sock::family fam, sock::kind type, int proto,
                        bool nonblocking) noexcept {
        socket s(adopt_tag{}, fd, fam, type, proto);
        if (nonblocking) s.timeout_ = std::chrono::nanoseconds(0);
        return s;
    }
    /// A socket that owns nothing; fileno() is -1.
    static socket invalid() noexcept { return socket(adopt_tag{}, -1, sock::family::unspec,
                                                     sock::kind::stream, 0); }

    // Inline: a connection's socket is moved several times on its way to a handler, and each
    // moved-from one is destroyed; those cost a few instructions this way, not calls.
    socket(socket&& other) noexcept
        : fd_(std::exchange(other.fd_, -1)),
          family_(other.family_),
          type_(other.type_),
          proto_(other.proto_),
          timeout_(other.timeout_) {}
    socket& operator=(socket&& other) noexcept;
    socket(const socket&) = delete;
    socket& operator=(const socket&) = delete;
    /// Closes the descriptor, if still owned.
    ~socket() {
        if (fd_ >= 0) close();
    }

    // -- the seed's six server steps and four client steps --------------------------------

    /// Assigns a local address; names are resolved for this socket's family.
    void bind(const address& addr);
    void bind(const address& addr, std::error_code& ec) noexcept;
    /// Starts accepting connections; backlog is the queue of not-yet-accepted ones.
    void listen(int backlog = 128);
    void listen(int backlog, std::error_code& ec) noexcept;
    /// Waits for a connection: returns the new socket and the peer's address.
    std::pair<socket, address> accept();
    std::pair<socket, address> accept(std::error_code& ec);
    /// Connects within the timeout, trying each address of a name (of this socket's family) in
    /// turn until one answers; a timeout ends the call.
    void connect(const address& addr);
    void connect(const address& addr, std::error_code& ec);
    /// Python's connect_ex: the error instead of an exception (empty on success).
    std::error_code connect_ex(const address& addr);

    /// Sends some of data; returns how many bytes the kernel took.
    std::size_t send(std::string_view data, int flags = 0);
    std::size_t send(std::string_view data, int flags, std::error_code& ec) noexcept;
    /// Sends all of data; a timeout bounds the whole call, not each piece.
    void sendall(std::string_view data, int flags = 0);
    /// Non-throwing sendall: returns how many bytes went out before an error.
    std::size_t sendall(std::string_view data, int flags, std::error_code& ec) noexcept;
    /// Receives at most max bytes; empty at orderly end of stream. The rest stays queued.
    std::string recv(std::size_t max, int flags = 0);
    std::string recv(std::size_t max, int flags, std::error_code& ec);
    /// Receives into buf; returns the byte count, 0 at end of stream.
    std::size_t recv_into(std::span<char> buf, int flags = 0);
    std::size_t recv_into(std::span<char> buf, int flags, std::error_code& ec) noexcept;
    std::size_t recv_into(std::span<std::byte> buf, int flags = 0);

    /// Sends one datagram to addr; returns bytes sent.
    std::size_t sendto(std::string_view data, const address& addr, int flags = 0);
    std::size_t sendto(std::string_view data, const address& addr, int flags,
                       std::error_code& ec);
    /// Receives one datagram of at most max bytes (the rest is discarded) and its sender.
    std::pair<std::string, address> recvfrom(std::size_t max, int flags = 0);
    std::pair<std::string, address> recvfrom(std::size_t max, int flags, std::error_code& ec);
    /// Receives one datagram into buf; returns its (possibly truncated) size and sender.
    std::pair<std::size_t, address> recvfrom_into(std::span<char> buf, int flags = 0);
    std::pair<std::size_t, address> recvfrom_into(std::span<char> buf, int flags,
                                                  std::error_code& ec) noexcept;

    /// Shuts down one or both directions; the descriptor stays open.
    void shutdown(shut how);
    void shutdown(shut how, std::error_code& ec) noexcept;
    /// Closes the descriptor; calling it again does nothing.
    void close() noexcept;
    /// Gives up ownership and returns the descriptor (Python's detach); -1 if closed.
    [[nodiscard]] int detach() noexcept;
    /// A second socket on a close-on-exec copy of the descriptor, with this one's family, type,
    /// protocol and timeout (Python's dup). Both share one open file: O_NONBLOCK, options,
    /// the connection; each closes only its own descriptor.
    [[nodiscard]] socket dup() const;
    [[nodiscard]] socket dup(std::error_code& ec) const;

    // -- messages with ancillary data (sendmsg, recvmsg) and descriptor passing --------------

    /// Sends buffers as one message, with ancillary items, to addr if given (Python's
    /// sendmsg(buffers, ancdata, flags, address)); returns bytes sent, maybe fewer than all.
    std::size_t sendmsg(std::span<const std::string_view> buffers,
                        std::span<const ancillary> ancdata = {}, int flags = 0,
                        const address& addr = address{});
    std::size_t sendmsg(std::span<const std::string_view> buffers,
                        std::span<const ancillary> ancdata, int flags, const address& addr,
                        std::error_code& ec);
    /// Receives at most bufsize bytes and ancbufsize bytes of ancillary data (size it with
    /// CMSG_SPACE), as Python's recvmsg; received descriptors are close-on-exec.
    message recvmsg(std::size_t bufsize, std::size_t ancbufsize = 0, int flags = 0);
    message recvmsg(std::size_t bufsize, std::size_t ancbufsize, int flags, std::error_code& ec);
    /// Sends buffers with copies of fds (SCM_RIGHTS) over a Unix socket (Python 3.9's
    /// send_fds); the caller keeps its fds. Stream sockets need at least one byte of data.
    std::size_t send_fds(std::span<const std::string_view> buffers, std::span<const int> fds,
                         int flags = 0, const address& addr = address{});
    std::size_t send_fds(std::span<const std::string_view> buffers, std::span<const int> fds,
                         int flags, const address& addr, std::error_code& ec);
    /// Receives at most bufsize bytes and maxfds descriptors, owned and close-on-exec
    /// (Python 3.9's recv_fds); MSG_CTRUNC in msg_flags when more were sent.
    fds_message recv_fds(std::size_t bufsize, std::size_t maxfds, int flags = 0);
    fds_message recv_fds(std::size_t bufsize, std::size_t maxfds, int flags, std::error_code& ec);

    // -- files ---------------------------------------------------------------------------

    /// Sends count bytes of file_fd from offset (to its end when nullopt) like Python's
    /// socket.sendfile: the kernel's sendfile(2) for a regular file on a stream socket, else
    /// read and send (pipes: offset must be 0). Returns bytes sent and leaves the file position
    /// at offset + sent. With a timeout it bounds each wait for the socket to take more, not
    /// the whole file (reading a pipe waits for its writer regardless); non-blocking sockets
    /// (timeout zero) throw std::invalid_argument.
    std::size_t sendfile(int file_fd, std::uint64_t offset = 0,
                         std::optional<std::uint64_t> count = std::nullopt);
    /// Non-throwing form: returns how many bytes went out before an error.
    std::size_t sendfile(int file_fd, std::uint64_t offset, std::optional<std::uint64_t> count,
                         std::error_code& ec) noexcept;
    /// Sends the file at path (opened read-only for the call) as sendfile(fd, ...) does.
    std::size_t sendfile(const std::string& path, std::uint64_t offset = 0,
                         std::optional<std::uint64_t> count = std::nullopt);
    std::size_t sendfile(const std::string& path, std::uint64_t offset,
                         std::optional<std::uint64_t> count, std::error_code& ec) noexcept;

    // -- state ----------------------------------------------------------------------------

    /// The descriptor, or -1 once closed or detached.
    int fileno() const noexcept { return fd_; }
    /// True while the socket owns a descriptor.
    explicit operator bool() const noexcept { return fd_ >= 0; }
    sock::family family() const noexcept { return family_; }
    sock::kind type() const noexcept { return type_; }
    int proto() const noexcept { return proto_; }

    /// The local address (after bind or connect).
    address getsockname() const;
    address getsockname(std::error_code& ec) const;
    /// The connected peer's address.
    address getpeername() const;
    address getpeername(std::error_code& ec) const;

    /// setblocking(true) is settimeout(nullopt); setblocking(false) is settimeout(0).
    void setblocking(bool flag);
    /// False when the timeout is zero or positive (the descriptor is then O_NONBLOCK).
    bool getblocking() const noexcept { return !timeout_.has_value(); }
    /// Sets the timeout for every later call; negative durations throw invalid_argument.
    void settimeout(timeout_t t);
    /// Python's settimeout(5): seconds as a number.
    void settimeout(double seconds);
    timeout_t gettimeout() const noexcept { return timeout_; }

    // -- options --------------------------------------------------------------------------

    /// Sets a typed option: s.setsockopt(sock::opt::reuse_address, true).
    template <class T>
    void setsockopt(const opt::option<T>& o, T value);
    /// Reads a typed option: bool on = s.getsockopt(sock::opt::tcp_nodelay).
    template <class T>
    T getsockopt(const opt::option<T>& o) const;
    /// Raw integer option, as Python's setsockopt(level, name, int).
    void setsockopt(int level, int name, int value);
    /// Raw option from a buffer.
    void setsockopt(int level, int name, const void* value, ::socklen_t len);
    void setsockopt(int level, int name, const void* value, ::socklen_t len,
                    std::error_code& ec) noexcept;
    /// Raw integer option.
    int getsockopt(int level, int name) const;
    /// Raw option into a buffer; len is updated to the size the kernel wrote.
    void getsockopt(int level, int name, void* value, ::socklen_t& len) const;
    void getsockopt(int level, int name, void* value, ::socklen_t& len,
                    std::error_code& ec) const noexcept;

    /// Text naming this socket in error messages: its peer, else "local " and its own address.
    std::string describe() const;

private:
    struct adopt_tag {};
    socket(adopt_tag, int fd, sock::family fam, sock::kind type, int proto) noexcept
        : fd_(fd), family_(fam), type_(type), proto_(proto) {}
    [[noreturn]] void fail(std::error_code ec, const char* call) const;
    [[noreturn]] void fail(std::error_code ec, const char* call, const address& addr) const;
    void connect_one(const ::sockaddr* sa, ::socklen_t len, std::error_code& ec) noexcept;
    void connect(const address& addr, std::error_code& ec, address* failed);

    int fd_ = -1;
    sock::family family_ = sock::family::unspec;
    sock::kind type_ = sock::kind::stream;
    int proto_ = 0;
    timeout_t timeout_;
};

template <class T>
void socket::setsockopt(const opt::option<T>& o, T value) {
    if constexpr (std::is_same_v<T, opt::linger_t>) {
        ::linger l{value.has_value() ? 1 : 0, value ? static_cast<int>(value->count()) : 0};
        setsockopt(o.level, o.name, &l, sizeof l);
    } else {
        setsockopt(o.level, o.name, static_cast<int>(value));
    }
}

template <class T>
T socket::getsockopt(const opt::option<T>& o) const {
    if constexpr (std::is_same_v<T, opt::linger_t>) {
        ::linger l{};
        ::socklen_t len = sizeof l;
        getsockopt(o.level, o.name, &l, len);
        return l.l_onoff ? opt::linger_t(std::chrono::seconds(l.l_linger)) : std::nullopt;
    } else if constexpr (std::is_same_v<T, bool>) {
        return getsockopt(o.level, o.name) != 0;
    } else {
        return static_cast<T>(getsockopt(o.level, o.name));
    }
}

}  // namespace sock
