// The transport under OpenSSL: a BIO over the socket's descriptor. Not SSL_set_fd: OpenSSL's
// socket BIO writes with plain send(), and a peer that has gone kills the process with
// SIGPIPE inside SSL_write. Nor a pair of memory BIOs: that copies every byte once more.
//
// Fewer system calls than OpenSSL's socket BIO, which matter on short connections (a TLS 1.3
// resumed handshake and a greeting took 10 receives and 4 sends with it, against 3 and 3 for
// a server at OpenSSL's floor: bench/NOTES.md):
// - Read-ahead is OpenSSL's own (SSL_set_read_ahead, set by the connection): each read asks
//   for the free space of OpenSSL's record buffer, so one recv takes a record's header, its
//   body and what follows, straight into the buffer that decrypts it.
// - Known-empty queue: a read that comes back short proves the socket's receive queue empty
//   where the driver trusts that (TCP without urgent data; see
//   sock::async_socket::short_read_drains). Until the driver says otherwise (the next edge of
//   readiness), reads fail with "retry" without a system call: the receive after an echo's
//   reply, or after a handshake's flight, would only have found EAGAIN.
// - Held writes: what a TLS 1.3 server's handshake writes after its last flight (the session
//   tickets) waits for the connection's next write and goes out with it in one sendmsg; it is
//   sent on its own before the connection waits to read, so nothing waits on it.
// Read-ahead and held writes only where the kernel has no TLS module (no inner BIO): with kTLS
// the kernel takes over the records from the handshake's end, which bytes read ahead or held
// would straddle.
//
// kTLS: OpenSSL hands the keys to the kernel through BIO_CTRL_SET_KTLS once the handshake's
// keys are ready. Those controls go to an inner socket BIO on the same descriptor, which
// makes the setsockopt calls. Where the kernel has no TLS module (as here) the first
// connection learns it and later ones skip the inner BIO and its failing calls; OpenSSL then
// keeps encrypting itself. Our writes stay ours even with kTLS: with kTLS send on, data goes
// out as plaintext for the kernel to frame, and alerts and handshake messages need their
// record type in a cmsg, sent here with MSG_NOSIGNAL too. Reads with kTLS receive on go
// through the inner BIO, which knows the record-type cmsg on the way in.

#include "connection.hpp"

#include <openssl/bio.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>
#include <string>

namespace sock::ssl::detail {

struct bio_state {
    int fd = -1;
    int last_errno = 0;
    BIO* inner = nullptr;         // OpenSSL's socket BIO, for the kTLS controls
    int ctrl_record_type = -1;    // kTLS send: the next write is a record of this type
    bool trust_short = false;     // a short read proves the receive queue empty
    bool known_empty = false;     // it is empty: reads retry without a system call
    bool hold = false;  // writes are kept in held instead of sent
    std::string held;   // written by OpenSSL, not yet sent
};

int last_errno(const bio_state& s) noexcept { return s.last_errno; }
void clear_errno(bio_state& s) noexcept { s.last_errno = 0; }
bool kernel_may_frame(const bio_state& s) noexcept { return s.inner != nullptr; }
void set_read_hint(bio_state& s, bool trust_short, bool known_empty) noexcept {
    s.trust_short = trust_short;
    s.known_empty = known_empty;
}
bool known_empty(const bio_state& s) noexcept { return s.known_empty; }
// Not where kTLS may engage (an inner BIO): the kernel takes the keys in the middle of a
// handshake, and neither held bytes nor bytes read past that point may be left with us.
void hold_writes(bio_state& s, bool on) noexcept { s.hold = on && s.inner == nullptr; }
bool has_held(const bio_state& s) noexcept { return !s.held.empty(); }

int flush_held(bio_state& s) noexcept {
    while (!s.held.empty()) {
        const auto sent = ::send(s.fd, s.held.data(), s.held.size(), MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            s.last_errno = errno;
            return -1;
        }
        s.held.erase(0, static_cast<std::size_t>(sent));
    }
    std::string().swap(s.held);  // an idle connection keeps no buffer
    return 1;
}

namespace {

#ifndef OPENSSL_NO_KTLS
// The kTLS controls OpenSSL's record layer sends to its BIO. 3.0 keeps these three in its
// internal headers (include/internal/bio.h); the numbers are part of its BIO ABI.
constexpr int ctrl_set_ktls = 72;
constexpr int ctrl_set_ktls_tx_send_ctrl_msg = 74;
constexpr int ctrl_clear_ktls_tx_ctrl_msg = 75;
#endif

bool retryable(int e) noexcept { return e == EAGAIN || e == EWOULDBLOCK; }

bool ktls_recv_on(const bio_state& s) noexcept {
#ifndef OPENSSL_NO_KTLS
    return s.inner != nullptr && BIO_get_ktls_recv(s.inner);
#else
    (void)s;
    return false;
#endif
}

int fd_read(BIO* b, char* out, int len) {
    auto& s = *static_cast<bio_state*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    if (ktls_recv_on(s)) {
        // The inner BIO reads whole records with their type; its retry and EOF flags are ours.
        errno = 0;
        const int got = BIO_read(s.inner, out, len);
        if (got <= 0) {
            if (BIO_should_retry(s.inner)) BIO_set_retry_read(b);
            else if (got == 0 || BIO_eof(s.inner)) BIO_set_flags(b, BIO_FLAGS_IN_EOF);
            else s.last_errno = errno;
        }
        return got;
    }
    if (s.known_empty) {
        BIO_set_retry_read(b);
        return -1;
    }
    for (;;) {
        const auto got = ::recv(s.fd, out, static_cast<std::size_t>(len), 0);
        if (got > 0) {
            if (got < len && s.trust_short) s.known_empty = true;
            return static_cast<int>(got);
        }
        if (got == 0) {
            // OpenSSL 3 asks BIO_eof whether a zero read was the end of the stream: that is
            // how a cut without close_notify becomes SSL_R_UNEXPECTED_EOF_WHILE_READING.
            BIO_set_flags(b, BIO_FLAGS_IN_EOF);
            return 0;
        }
        if (errno == EINTR) continue;
        if (retryable(errno)) BIO_set_retry_read(b);
        else s.last_errno = errno;
        return -1;
    }
}

// A record of another type than application data, when the kernel frames the records.
ssize_t send_control_record(int fd, unsigned char type, const char* in, std::size_t len) {
    char control[CMSG_SPACE(sizeof type)] = {};
    ::iovec iov{const_cast<char*>(in), len};
    ::msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ::cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_TLS;
    c->cmsg_type = 1;  // TLS_SET_RECORD_TYPE (linux/tls.h, which clashes with glibc's headers)
    c->cmsg_len = CMSG_LEN(sizeof type);
    std::memcpy(CMSG_DATA(c), &type, sizeof type);
    return ::sendmsg(fd, &msg, MSG_NOSIGNAL);
}

// Sends what is held, then data, in one call. Returns how much of data went out (0: none
// yet, retry), or -1 with errno set.
ssize_t send_after_held(bio_state& s, const char* in, std::size_t len) {
    for (;;) {
        ::iovec iov[2] = {{s.held.data(), s.held.size()}, {const_cast<char*>(in), len}};
        ::msghdr msg{};
        msg.msg_iov = iov;
        msg.msg_iovlen = 2;
        const auto sent = ::sendmsg(s.fd, &msg, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        const auto n = static_cast<std::size_t>(sent);
        if (n < s.held.size()) {
            s.held.erase(0, n);
            return 0;
        }
        std::string().swap(s.held);
        return static_cast<ssize_t>(n - iov[0].iov_len);
    }
}

int fd_write(BIO* b, const char* in, int len) {
    auto& s = *static_cast<bio_state*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    if (s.hold) {
        try {
            s.held.append(in, static_cast<std::size_t>(len));
        } catch (const std::bad_alloc&) {
            s.last_errno = ENOMEM;
            return -1;
        }
        return len;
    }
    if (!s.held.empty() && s.ctrl_record_type < 0) {
        const auto sent = send_after_held(s, in, static_cast<std::size_t>(len));
        if (sent > 0) return static_cast<int>(sent);
        if (sent == 0 || retryable(errno)) BIO_set_retry_write(b);
        else s.last_errno = errno;
        return -1;
    }
    for (;;) {
        const auto n = static_cast<std::size_t>(len);
        const auto sent = s.ctrl_record_type >= 0
                              ? send_control_record(s.fd, static_cast<unsigned char>(s.ctrl_record_type), in, n)
                              : ::send(s.fd, in, n, MSG_NOSIGNAL);
        if (sent >= 0) {
            // A control record goes out whole or not at all (the kernel's tls_sw does).
            s.ctrl_record_type = -1;
            return static_cast<int>(sent);
        }
        if (errno == EINTR) continue;
        if (retryable(errno)) BIO_set_retry_write(b);
        else s.last_errno = errno;
        return -1;
    }
}

long fd_ctrl(BIO* b, int cmd, long num, void* ptr) {
    auto& s = *static_cast<bio_state*>(BIO_get_data(b));
    switch (cmd) {
    case BIO_CTRL_FLUSH:  // each write is a send; what is held waits on purpose
        return 1;
    case BIO_C_GET_FD:
        if (ptr != nullptr) *static_cast<int*>(ptr) = s.fd;
        return s.fd;
    case BIO_CTRL_EOF:
        return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
#ifndef OPENSSL_NO_KTLS
    case ctrl_set_ktls:
    case BIO_CTRL_GET_KTLS_SEND:
    case BIO_CTRL_GET_KTLS_RECV:
        return s.inner != nullptr ? BIO_ctrl(s.inner, cmd, num, ptr) : 0;
    case ctrl_set_ktls_tx_send_ctrl_msg:
        s.ctrl_record_type = static_cast<int>(num & 0xff);
        return 0;
    case ctrl_clear_ktls_tx_ctrl_msg:
        s.ctrl_record_type = -1;
        return 0;
#endif
    default:
        return 0;
    }
}

int fd_create(BIO* b) {
    BIO_set_init(b, 0);
    return 1;
}

int fd_destroy(BIO* b) {
    auto* s = static_cast<bio_state*>(BIO_get_data(b));
    if (s != nullptr) {
        BIO_free(s->inner);
        delete s;
    }
    BIO_set_data(b, nullptr);
    return 1;
}

#ifndef OPENSSL_NO_KTLS
// Whether the kernel has a TLS module, asked once per process on the first connection: the
// "tls" upper layer protocol is refused with ENOENT when the module is missing (loading it
// later takes a restart to be used). Other failures (not connected, already set) say nothing.
bool kernel_has_tls(int fd) noexcept {
    enum : int { unknown, yes, no };
    static std::atomic<int> known{unknown};
    const int k = known.load(std::memory_order_relaxed);
    if (k != unknown) return k == yes;
    static const char ulp[] = "tls";
    if (::setsockopt(fd, IPPROTO_TCP, TCP_ULP, ulp, sizeof ulp - 1) == 0) {
        known.store(yes, std::memory_order_relaxed);
        return true;
    }
    if (errno == ENOENT) {
        known.store(no, std::memory_order_relaxed);
        return false;
    }
    return true;  // let OpenSSL try, as it would without us
}
#endif

// One method table for the process; OpenSSL keeps it until exit.
const BIO_METHOD* fd_method() noexcept {
    static BIO_METHOD* const method = [] {
        BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sock fd");
        if (m == nullptr) return m;
        BIO_meth_set_read(m, fd_read);
        BIO_meth_set_write(m, fd_write);
        BIO_meth_set_ctrl(m, fd_ctrl);
        BIO_meth_set_create(m, fd_create);
        BIO_meth_set_destroy(m, fd_destroy);
        return m;
    }();
    return method;
}

}  // namespace

BIO* new_fd_bio(int fd, bio_state*& state) noexcept {
    const BIO_METHOD* m = fd_method();
    if (m == nullptr) return nullptr;
    auto* s = new (std::nothrow) bio_state;
    if (s == nullptr) return nullptr;
    BIO* b = BIO_new(m);
    if (b == nullptr) {
        delete s;
        return nullptr;
    }
    s->fd = fd;
#ifndef OPENSSL_NO_KTLS
    // BIO_new_socket also asks for the "tls" upper layer protocol, which kTLS needs before
    // the keys can be handed over.
    if (kernel_has_tls(fd)) s->inner = BIO_new_socket(fd, BIO_NOCLOSE);
#endif
    BIO_set_data(b, s);
    BIO_set_init(b, 1);
    state = s;
    return b;
}

}  // namespace sock::ssl::detail
