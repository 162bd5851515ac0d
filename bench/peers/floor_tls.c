/* floor_tls: OpenSSL's own cost of a TLS 1.3 server, as the floor of W6 and W7.
 *
 * One thread, one epoll set, level-triggered, like floor_greet.c and floor_echo.c,
 * with TLS 1.3 (ECDSA P-256 certificate, session tickets on: OpenSSL's defaults,
 * two tickets after a full handshake, one after a resumed one) over a BIO pair:
 *
 *   socket --recv()--> pair --SSL_do_handshake/SSL_read--> plaintext
 *   plaintext --SSL_write/SSL_shutdown--> pair --send(MSG_NOSIGNAL)--> socket
 *
 * Why a BIO pair and not SSL_set_fd: a library that runs its own event loop owns the
 * socket's reads and writes and hands OpenSSL bytes through memory, as Asio's
 * ssl::stream does and as ours will; the floor pays what such a server pays, so W6's
 * "≤ 1.05× the floor" compares like with like. The pair's non-copying calls
 * (BIO_nwrite0/BIO_nread0) let recv() and send() work straight in its buffers, so the
 * only copy beyond SSL_set_fd's is OpenSSL's own from the pair into its record buffer
 * (about 1 µs per 16 KiB record, against some 8 µs of AES-GCM each way). send() with
 * MSG_NOSIGNAL also keeps a peer that went away from raising SIGPIPE (SSL_set_fd's
 * socket BIO uses plain send(); this program ignores SIGPIPE anyway).
 *
 * Modes:
 *   greet  handshake, read the request, answer "welcome to server!" to "1" (anything
 *          else, EOF included: "please go out!"), send close_notify, close. No timeout.
 *   echo   handshake, then every record read is written back, until the peer leaves.
 *
 * The pair holds 17 KiB each way (OpenSSL's default, one full record, as Asio's), and
 * SSL_MODE_RELEASE_BUFFERS lets OpenSSL free its record buffers while a connection is
 * idle (Asio sets it too): the floor should not hold more memory per idle connection
 * than a reasonable server does. This is a floor, not a server: no timeouts, no logs.
 *
 * usage: peer-floor-tls PORT CERT KEY [greet|echo]   (PORT 0 picks a free one)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { pair_size = 17 * 1024, record_max = 16 * 1024 };

static const char welcome[] = "welcome to server!";
static const char go_out[] = "please go out!";

enum state { st_handshake, st_request, st_echo, st_closing };

struct conn {
    int fd;
    SSL *ssl;
    BIO *net;          /* our end of the pair; the SSL object owns the other */
    enum state state;
    int watching_out;  /* registered for EPOLLOUT: the socket took less than the pair held */
    char *pend;        /* echo: a record's plaintext SSL_write has not taken yet */
    size_t pend_len;
};

static SSL_CTX *ctx;
static int echo_mode;
static int ep;

_Noreturn static void die(const char *what) {
    perror(what);
    exit(1);
}

_Noreturn static void die_ssl(const char *what) {
    fprintf(stderr, "%s failed\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static int open_listener(unsigned short port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1, defer_seconds = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) die("setsockopt SO_REUSEADDR");
    /* The client speaks first (ClientHello), so accept can wait for its bytes, as in floor_greet.c. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_seconds, sizeof defer_seconds) < 0)
        die("setsockopt TCP_DEFER_ACCEPT");
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
    if (listen(fd, 65535) < 0) die("listen"); /* the kernel clamps to somaxconn */
    return fd;
}

static void print_listening(int fd) {
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0) die("getsockname");
    printf("listening on 127.0.0.1:%u\n", (unsigned)ntohs(addr.sin_port));
    fflush(stdout);
}

static SSL_CTX *make_ctx(const char *cert, const char *key) {
    SSL_CTX *c = SSL_CTX_new(TLS_server_method());
    if (!c) die_ssl("SSL_CTX_new");
    if (!SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION)) die_ssl("SSL_CTX_set_min_proto_version");
    if (SSL_CTX_use_certificate_chain_file(c, cert) != 1) die_ssl("SSL_CTX_use_certificate_chain_file");
    if (SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1) die_ssl("SSL_CTX_use_PrivateKey_file");
    if (SSL_CTX_check_private_key(c) != 1) die_ssl("SSL_CTX_check_private_key");
    /* ACCEPT_MOVING_WRITE_BUFFER: an echo record SSL_write could not take at once is
     * retried from a copy (see serve_echo). */
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return c;
}

static void drop(struct conn *c) {
    close(c->fd); /* also drops it from the epoll set */
    SSL_free(c->ssl);
    BIO_free(c->net);
    free(c->pend);
    free(c);
}

/* Moves what the socket holds into the pair, recv() writing straight into the pair's
 * buffer. Returns 0, or -1 at the end of the stream or on an error. */
static int fill(struct conn *c) {
    for (;;) {
        char *room;
        int space = BIO_nwrite0(c->net, &room);
        if (space <= 0) return 0; /* full: OpenSSL consumes first, then the socket is read again */
        ssize_t n = recv(c->fd, room, (size_t)space, 0);
        if (n > 0) {
            BIO_nwrite(c->net, &room, (int)n);
            if (n < space) return 0; /* drained (most likely): no extra recv() to see EAGAIN */
            continue;                 /* the pair's ring wrapped: there may be more */
        }
        if (n == 0) return -1;
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    }
}

/* Sends what OpenSSL put in the pair, straight from its buffer. Returns 1 once the pair
 * is empty, 0 if the socket is full, -1 on an error. */
static int flush(struct conn *c) {
    for (;;) {
        char *data;
        int len = BIO_nread0(c->net, &data);
        if (len <= 0) return 1;
        ssize_t n = send(c->fd, data, (size_t)len, MSG_NOSIGNAL);
        if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
        BIO_nread(c->net, &data, (int)n);
        if (n < len) return 0;
    }
}

/* Greet mode after the handshake: returns 0 to wait, 1 when the answer and close_notify
 * are in the pair, -1 to drop the connection. */
static int serve_request(struct conn *c) {
    char buf[64];
    int n = SSL_read(c->ssl, buf, sizeof buf);
    if (n <= 0) {
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ) return 0;
        if (e != SSL_ERROR_ZERO_RETURN) return -1; /* close_notify before a request: "not 1" */
    }
    const char *reply = n == 1 && buf[0] == '1' ? welcome : go_out;
    int len = reply == welcome ? (int)sizeof welcome - 1 : (int)sizeof go_out - 1;
    /* Far less than the pair's room: it always takes the whole record. */
    if (SSL_write(c->ssl, reply, len) != len) return -1;
    SSL_shutdown(c->ssl); /* queues our close_notify; we do not wait for the client's */
    return 1;
}

/* Echo mode: writes back every record read. Returns 0 to wait for the socket (readable,
 * or writable when c->pend is left), -1 to drop the connection. */
static int serve_echo(struct conn *c) {
    static char buf[record_max];
    for (;;) {
        if (c->pend_len) {
            int w = SSL_write(c->ssl, c->pend, (int)c->pend_len);
            if (w <= 0) {
                int e = SSL_get_error(c->ssl, w);
                if (e != SSL_ERROR_WANT_WRITE) return -1;
                int f = flush(c); /* the pair is full: make room */
                if (f < 0) return -1;
                if (f == 0) return 0;
                continue;
            }
            c->pend_len = 0;
        }
        int f = flush(c);
        if (f < 0) return -1;
        if (f == 0) return 0; /* read no more until the client takes what we sent */
        int n = SSL_read(c->ssl, buf, sizeof buf);
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_READ) return 0;
            if (e == SSL_ERROR_WANT_WRITE) continue; /* e.g. answering a KeyUpdate: flush */
            return -1; /* close_notify, EOF or an error: done */
        }
        /* Most records go straight back from the static buffer; keep a copy only when
         * SSL_write cannot take it now (the next loop retries it first). */
        int w = SSL_write(c->ssl, buf, n);
        if (w == n) continue;
        if (w > 0 || SSL_get_error(c->ssl, w) != SSL_ERROR_WANT_WRITE) return -1;
        c->pend = realloc(c->pend, (size_t)n);
        if (!c->pend) die("realloc");
        memcpy(c->pend, buf, (size_t)n);
        c->pend_len = (size_t)n;
    }
}

static void watch_out(struct conn *c, int out) {
    if (c->watching_out == out) return;
    struct epoll_event ev = {.events = out ? EPOLLOUT : EPOLLIN, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl MOD");
    c->watching_out = out;
}

/* Everything a connection does on a readiness event (or right after accept). Level-
 * triggered: whatever is left in the socket fires again. */
static void serve(struct conn *c) {
    int eof = 0;
    if (c->state != st_closing && fill(c) < 0) eof = 1;
    ERR_clear_error();
    if (c->state == st_handshake) {
        int r = SSL_do_handshake(c->ssl);
        if (r == 1) {
            c->state = echo_mode ? st_echo : st_request;
        } else if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ) {
            flush(c); /* an alert, if OpenSSL wrote one */
            drop(c);
            return;
        }
    }
    if (c->state == st_request) {
        int r = serve_request(c);
        if (r < 0) {
            drop(c);
            return;
        }
        if (r > 0) c->state = st_closing;
    }
    if (c->state == st_echo) {
        if (serve_echo(c) < 0) {
            drop(c);
            return;
        }
        if (eof && !c->pend_len) { /* the client left; what we still owe goes nowhere */
            drop(c);
            return;
        }
        watch_out(c, c->pend_len > 0 || BIO_ctrl_pending(c->net) > 0);
        return;
    }
    int f = flush(c); /* the handshake's flight, or the answer and close_notify */
    if (f < 0 || eof || (f == 1 && c->state == st_closing)) {
        drop(c);
        return;
    }
    watch_out(c, f == 0);
}

static void accept_all(int lfd) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return; /* EAGAIN, or EMFILE: try again on the next wakeup */
        struct conn *c = calloc(1, sizeof *c);
        if (!c) die("calloc");
        c->fd = fd;
        c->ssl = SSL_new(ctx);
        BIO *inner;
        if (!c->ssl || !BIO_new_bio_pair(&inner, pair_size, &c->net, pair_size)) die_ssl("SSL_new/BIO_new_bio_pair");
        SSL_set_bio(c->ssl, inner, inner);
        SSL_set_accept_state(c->ssl);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            drop(c);
            continue;
        }
        serve(c); /* TCP_DEFER_ACCEPT: the ClientHello is most likely here already */
    }
}

static volatile sig_atomic_t stopping;
static void on_stop(int sig) { (void)sig; stopping = 1; }

/* SIGINT/SIGTERM stay blocked except inside epoll_pwait, so a stop can't slip in
 * between checking the flag and going to sleep. Fills *wait_mask for epoll_pwait. */
static void catch_stop_signals(sigset_t *wait_mask) {
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_stop};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop_signals, wait_mask);
    sigdelset(wait_mask, SIGINT);
    sigdelset(wait_mask, SIGTERM);
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 5 || (argc == 5 && strcmp(argv[4], "greet") != 0 && strcmp(argv[4], "echo") != 0)) {
        fprintf(stderr, "usage: %s PORT CERT KEY [greet|echo]\n", argv[0]);
        return 2;
    }
    echo_mode = argc == 5 && strcmp(argv[4], "echo") == 0;
    sigset_t wait_mask;
    catch_stop_signals(&wait_mask);
    ctx = make_ctx(argv[2], argv[3]);

    int lfd = open_listener((unsigned short)atoi(argv[1]));
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}; /* NULL: the listener */
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) die("epoll_ctl listener");
    print_listening(lfd);

    struct epoll_event fired[256];
    while (!stopping) {
        int n = epoll_pwait(ep, fired, 256, -1, &wait_mask);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_pwait");
        }
        for (int i = 0; i < n; i++) {
            if (fired[i].data.ptr) serve(fired[i].data.ptr);
            else accept_all(lfd);
        }
    }
    SSL_CTX_free(ctx);
    return 0;
}
