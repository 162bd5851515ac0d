/* tls_load: the TLS load generator of W6, W7 and W8, not a system under test.
 *
 * One thread, one epoll set, non-blocking sockets, OpenSSL 3 with SSL_set_fd (SIGPIPE
 * is ignored). A client like any other: TLS 1.3 only, TLS_AES_128_GCM_SHA256, X25519,
 * ECDSA P-256 with SHA-256, the server's certificate verified against --ca for the name
 * "localhost", which it also sends as SNI. TCP_NODELAY, so that the request following the
 * client's Finished is not held back by Nagle.
 *
 *   --mode greet  N connections at once, each: connect, full TLS handshake, send "1", read
 *                 the answer to close_notify (or to a reset once the whole answer is in:
 *                 nginx's `return` closes with the request unread), check it is
 *                 "welcome to server!", close, start again; for the duration. With
 *                 --resume, each of the N slots offers the last session ticket it got
 *                 (caught by the new-session callback), so every handshake but a slot's
 *                 first is a resumed one (TLS 1.3 PSK with a fresh X25519 exchange).
 *   --mode echo   N connections, handshake once, then ping-pong: write a message of
 *                 --size bytes, read it all back, check it byte for byte, repeat.
 *                 --plain does the same without TLS (the plaintext baseline).
 *   --mode idle   open N connections, at most --inflight handshaking at once, and count
 *                 one established once the server's session ticket arrives (the server
 *                 sends it after reading the client's Finished, so its side of the
 *                 handshake is over), or a second after the handshake without one. Then
 *                 print "holding N" on a line of its own and keep them all open and
 *                 silent for --hold seconds (the caller reads the server's memory then).
 *                 --duration bounds the set-up.
 *
 * Prints one line of JSON, in greet-bench --json's shape: "completed" (greetings,
 * messages, or connections still held at the end), errors by kind, "rate" (per second;
 * idle: handshakes per second of the set-up), handshakes and how many were resumed, and
 * latency percentiles in µs (greet: from connect to the whole answer; echo: from a
 * message's write to its last byte back; idle: from connect to established). Work still
 * in flight when the duration ends is neither counted nor an error.
 *
 * usage: peer-tls-load --host H --port P --mode greet|echo|idle [--ca FILE]
 *          [--connections N] [--duration S] [--resume] [--size B] [--plain]
 *          [--inflight K] [--hold S] [--timeout S] [--json]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { m_greet, m_echo, m_idle };
enum kind { k_connect, k_handshake, k_reset, k_eof, k_mismatch, k_timeout, k_closed, kinds };
static const char *const kind_names[kinds] = {"connect", "handshake", "reset", "eof", "mismatch", "timeout",
                                              "closed_while_idle"};

enum phase {
    p_free,       /* no connection in this slot */
    p_connecting, /* waiting for the connect to complete */
    p_handshake,
    p_request,    /* greet: sending "1" */
    p_reply,      /* greet: reading the answer */
    p_echo_write, /* echo: sending a message */
    p_echo_read,  /* echo: reading it back */
    p_ticket,     /* idle: handshake done, waiting for the server's ticket */
    p_idle,       /* idle: established, held open */
    p_done,       /* echo: the duration is over; nothing more to do */
};

struct conn {
    int fd;
    SSL *ssl;
    enum phase phase;
    uint32_t events;       /* what epoll watches for it */
    double started;        /* connect (greet, idle) or the message's write (echo) */
    double phase_at;       /* when the current wait began, for --timeout */
    size_t done;           /* bytes of the current message written, or read */
    uint64_t seq;          /* echo: messages sent on this connection */
    int ticket;            /* a session ticket arrived on this connection */
    SSL_SESSION *session;  /* --resume: the last ticket this slot got */
    char reply[64];        /* greet: the answer so far */
    char *out, *back;      /* echo: the message, and what came back */
};

static enum mode mode = m_greet;
static int plain, resume;
static size_t size = 16384;
static double timeout_s = 10;
static struct sockaddr_in server;
static SSL_CTX *ctx;
static int ep;
static unsigned long errors[kinds];
static uint64_t completed, handshakes, resumed, established, no_ticket;
static uint32_t *lat;
static size_t lat_len, lat_cap;

static const char welcome[] = "welcome to server!";

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

_Noreturn static void die(const char *what) {
    perror(what);
    exit(1);
}

_Noreturn static void die_ssl(const char *what) {
    fprintf(stderr, "%s failed\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static void record(double seconds) {
    if (lat_len == lat_cap) {
        lat_cap = lat_cap ? lat_cap * 2 : 65536;
        lat = realloc(lat, lat_cap * sizeof *lat);
        if (!lat) die("realloc");
    }
    double us = seconds * 1e6;
    lat[lat_len++] = us > 4e9 ? 4000000000u : (uint32_t)us;
}

static int by_value(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static uint32_t percentile(double p) {
    if (lat_len == 0) return 0;
    size_t rank = (size_t)(p / 100.0 * (double)lat_len + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > lat_len) rank = lat_len;
    return lat[rank - 1];
}

/* TLS 1.3 sends tickets after the handshake; OpenSSL hands each to this callback while
 * SSL_read processes it. With --resume the slot keeps the newest (returning 1 keeps our
 * reference); otherwise it only notes that one came (idle mode's "server is done"). */
static int on_new_session(SSL *ssl, SSL_SESSION *session) {
    struct conn *c = SSL_get_app_data(ssl);
    c->ticket = 1;
    if (!resume) return 0;
    SSL_SESSION_free(c->session);
    c->session = session;
    return 1;
}

static SSL_CTX *make_ctx(const char *ca) {
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    if (!c) die_ssl("SSL_CTX_new");
    if (!SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION)) die_ssl("SSL_CTX_set_min_proto_version");
    if (!SSL_CTX_set_ciphersuites(c, "TLS_AES_128_GCM_SHA256")) die_ssl("SSL_CTX_set_ciphersuites");
    if (!SSL_CTX_set1_groups_list(c, "X25519")) die_ssl("SSL_CTX_set1_groups_list");
    if (!SSL_CTX_set1_sigalgs_list(c, "ECDSA+SHA256")) die_ssl("SSL_CTX_set1_sigalgs_list");
    if (SSL_CTX_load_verify_locations(c, ca, NULL) != 1) die_ssl("SSL_CTX_load_verify_locations");
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    /* The callback fires only with client caching on; the internal store stays off. */
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c, on_new_session);
    /* 10,000 idle connections: let OpenSSL free our side's record buffers while idle. */
    if (mode == m_idle) SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    return c;
}

static void watch(struct conn *c, uint32_t events) {
    if (c->events == events) return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl MOD");
    c->events = events;
}

static void close_conn(struct conn *c) {
    if (c->ssl) {
        /* No close_notify of ours: the server has closed or is about to (and with a quiet
         * shutdown OpenSSL still counts the session as cleanly ended). */
        SSL_set_quiet_shutdown(c->ssl, 1);
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    close(c->fd); /* also drops it from the epoll set */
    c->fd = -1;
    c->phase = p_free;
}

static void fail(struct conn *c, enum kind why) {
    errors[why]++;
    close_conn(c);
}

static void start(struct conn *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        errors[k_connect]++;
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&server, sizeof server) < 0 && errno != EINPROGRESS) {
        close(fd);
        errors[k_connect]++;
        return;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl ADD");
    c->fd = fd;
    c->events = EPOLLOUT;
    c->phase = p_connecting;
    c->started = c->phase_at = now();
    c->ticket = 0;
}

/* Reads or writes through TLS or, with --plain, the socket. Returns the bytes moved, 0 to
 * wait (for *wait: EPOLLIN or EPOLLOUT), or -1 at the end of the stream or on an error
 * (*kind says which: k_eof for a clean end, close_notify included, else k_reset). */
static int io(struct conn *c, int writing, char *buf, size_t len, uint32_t *wait, enum kind *kind) {
    if (!c->ssl) {
        ssize_t n = writing ? send(c->fd, buf, len, MSG_NOSIGNAL) : recv(c->fd, buf, len, 0);
        if (n > 0) return (int)n;
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            *wait = writing ? EPOLLOUT : EPOLLIN;
            return 0;
        }
        *kind = n == 0 ? k_eof : k_reset;
        return -1;
    }
    ERR_clear_error();
    int n = writing ? SSL_write(c->ssl, buf, (int)len) : SSL_read(c->ssl, buf, (int)len);
    if (n > 0) return n;
    switch (SSL_get_error(c->ssl, n)) {
    case SSL_ERROR_WANT_READ: *wait = EPOLLIN; return 0;
    case SSL_ERROR_WANT_WRITE: *wait = EPOLLOUT; return 0;
    case SSL_ERROR_ZERO_RETURN: *kind = k_eof; return -1;
    default: *kind = k_reset; return -1; /* a reset, or OpenSSL 3's unexpected EOF */
    }
}

/* The next echo message: its number in the first 8 bytes, a pattern that shifts with it
 * in the rest, so a stale or misplaced message does not compare equal. */
static void next_message(struct conn *c) {
    c->seq++;
    memcpy(c->out, &c->seq, sizeof c->seq);
    c->out[8 + c->seq % (size - 8)] ^= 0x5a;
    c->done = 0;
    c->started = c->phase_at = now();
    c->phase = p_echo_write;
}

/* Runs a connection as far as it goes without waiting. */
static void advance(struct conn *c, double end) {
    for (;;) {
        uint32_t wait = EPOLLIN;
        enum kind kind = k_reset;
        switch (c->phase) {
        case p_free:
        case p_done:
            return;
        case p_connecting: {
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
                fail(c, k_connect);
                return;
            }
            if (plain) {
                next_message(c); /* plaintext exists only for the echo baseline */
                continue;
            }
            c->ssl = SSL_new(ctx);
            if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) die_ssl("SSL_new");
            SSL_set_app_data(c->ssl, c);
            SSL_set_tlsext_host_name(c->ssl, "localhost");
            SSL_set1_host(c->ssl, "localhost");
            if (resume && c->session) SSL_set_session(c->ssl, c->session);
            SSL_set_connect_state(c->ssl);
            c->phase = p_handshake;
            c->phase_at = now();
            continue;
        }
        case p_handshake: {
            ERR_clear_error();
            int r = SSL_do_handshake(c->ssl);
            if (r != 1) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    watch(c, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
                    return;
                }
                fail(c, k_handshake);
                return;
            }
            handshakes++;
            if (SSL_session_reused(c->ssl)) resumed++;
            c->phase_at = now();
            if (mode == m_greet) {
                c->phase = p_request;
            } else if (mode == m_echo) {
                next_message(c);
            } else {
                c->phase = p_ticket;
            }
            continue;
        }
        case p_request: {
            static char request[] = "1";
            int n = io(c, 1, request, 1, &wait, &kind);
            if (n < 0) {
                fail(c, kind == k_eof ? k_eof : k_reset);
                return;
            }
            if (n == 0) break;
            c->done = 0;
            c->phase = p_reply;
            continue;
        }
        case p_reply: {
            int n = io(c, 0, c->reply + c->done, sizeof c->reply - 1 - c->done, &wait, &kind);
            if (n > 0) {
                c->done += (size_t)n;
                if (c->done < sizeof c->reply - 1) continue;
            } else if (n == 0) {
                break;
            }
            /* The end of the answer: close_notify, EOF, a reset, or more bytes than any
             * answer has. Whole and right, it counts, however the stream ended. */
            if (c->done == sizeof welcome - 1 && memcmp(c->reply, welcome, c->done) == 0) {
                completed++;
                record(now() - c->started);
                close_conn(c);
                if (now() < end) start(c);
            } else {
                fail(c, c->done ? k_mismatch : kind);
            }
            return;
        }
        case p_echo_write: {
            int n = io(c, 1, c->out + c->done, size - c->done, &wait, &kind);
            if (n < 0) {
                fail(c, kind);
                return;
            }
            if (n == 0) break;
            c->done += (size_t)n;
            if (c->done == size) {
                c->done = 0;
                c->phase = p_echo_read;
            }
            continue;
        }
        case p_echo_read: {
            int n = io(c, 0, c->back + c->done, size - c->done, &wait, &kind);
            if (n < 0) {
                fail(c, kind);
                return;
            }
            if (n == 0) break;
            c->done += (size_t)n;
            if (c->done < size) continue;
            if (memcmp(c->out, c->back, size) != 0) {
                fail(c, k_mismatch);
                return;
            }
            double t = now();
            completed++;
            record(t - c->started);
            if (t >= end) {
                c->phase = p_done;
                return;
            }
            next_message(c);
            continue;
        }
        case p_ticket:
        case p_idle: {
            char scratch[64];
            int n = io(c, 0, scratch, sizeof scratch, &wait, &kind);
            if (n != 0) { /* the server said something, or left: neither is expected */
                fail(c, n > 0 ? k_mismatch : (c->phase == p_idle ? k_closed : kind));
                return;
            }
            if (c->phase == p_ticket && c->ticket) {
                c->phase = p_idle;
                established++;
                record(now() - c->started);
            }
            break;
        }
        }
        watch(c, wait);
        return;
    }
}

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s --host H --port P --mode greet|echo|idle [--ca FILE] [--connections N]\n"
            "          [--duration S] [--resume] [--size B] [--plain] [--inflight K] [--hold S]\n"
            "          [--timeout S] [--json]\n",
            argv0);
    exit(2);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *ca = NULL;
    long port = -1, connections = 64, inflight = 64;
    double duration = -1, hold = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) continue; /* always JSON */
        if (strcmp(a, "--resume") == 0) { resume = 1; continue; }
        if (strcmp(a, "--plain") == 0) { plain = 1; continue; }
        if (i + 1 >= argc) usage(argv[0]);
        const char *v = argv[++i];
        if (strcmp(a, "--host") == 0) host = v;
        else if (strcmp(a, "--port") == 0) port = atol(v);
        else if (strcmp(a, "--ca") == 0) ca = v;
        else if (strcmp(a, "--connections") == 0) connections = atol(v);
        else if (strcmp(a, "--duration") == 0) duration = atof(v);
        else if (strcmp(a, "--size") == 0) size = (size_t)atol(v);
        else if (strcmp(a, "--inflight") == 0) inflight = atol(v);
        else if (strcmp(a, "--hold") == 0) hold = atof(v);
        else if (strcmp(a, "--timeout") == 0) timeout_s = atof(v);
        else if (strcmp(a, "--mode") == 0) {
            if (strcmp(v, "greet") == 0) mode = m_greet;
            else if (strcmp(v, "echo") == 0) mode = m_echo;
            else if (strcmp(v, "idle") == 0) mode = m_idle;
            else usage(argv[0]);
        } else usage(argv[0]);
    }
    if (duration < 0) duration = mode == m_idle ? 120 : 3;
    if (port < 1 || port > 65535 || connections < 1 || inflight < 1 || duration <= 0 || size < 16 ||
        (plain && mode != m_echo) || (!plain && !ca) || (resume && mode != m_greet))
        usage(argv[0]);
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &server.sin_addr) != 1) usage(argv[0]);
    signal(SIGPIPE, SIG_IGN); /* SSL_set_fd's socket BIO writes with plain send() */

    /* W8 holds 10,000 connections: all the descriptors the hard limit allows. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)connections + 16)
        fprintf(stderr, "tls_load: RLIMIT_NOFILE %llu is below %ld connections: expect connect errors\n",
                (unsigned long long)rl.rlim_cur, connections);

    if (!plain) ctx = make_ctx(ca);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct conn *conns = calloc((size_t)connections, sizeof *conns);
    if (!conns) die("calloc");
    for (long i = 0; i < connections; i++) {
        conns[i].fd = -1;
        if (mode == m_echo) {
            conns[i].out = malloc(size);
            conns[i].back = malloc(size);
            if (!conns[i].out || !conns[i].back) die("malloc");
            for (size_t k = 0; k < size; k++) conns[i].out[k] = (char)('a' + (k + (size_t)i) % 26);
        }
        if (mode != m_idle) start(&conns[i]);
    }

    const double began = now(), end = began + duration;
    double setup_end = 0, hold_end = 0, next_scan = began;
    long opened = 0;
    struct epoll_event fired[256];
    for (;;) {
        double t = now();
        if (mode != m_idle && t >= end) break;
        if (mode == m_idle && !hold_end && (established == (uint64_t)connections || t >= end)) {
            setup_end = t; /* all in (or out of time): hold what we have */
            hold_end = t + hold;
            printf("holding %llu\n", (unsigned long long)established);
            fflush(stdout);
        }
        if (hold_end && t >= hold_end) break;
        if (t >= next_scan) { /* every 10 ms: timeouts, replacements, idle mode's next opens */
            next_scan = t + 0.01;
            long handshaking = 0;
            for (long i = 0; i < connections; i++) {
                struct conn *c = &conns[i];
                if (c->phase == p_ticket && t - c->phase_at > 1) { /* no ticket: count it anyway */
                    c->phase = p_idle;
                    established++;
                    no_ticket++;
                    record(t - c->started);
                }
                if (c->phase != p_free && c->phase != p_idle && c->phase != p_done && t - c->phase_at > timeout_s)
                    fail(c, k_timeout);
                if (mode != m_idle && c->phase == p_free && t < end) start(c);
                if (c->phase == p_connecting || c->phase == p_handshake || c->phase == p_ticket) handshaking++;
            }
            if (mode == m_idle && !hold_end) { /* open more, --inflight at a time; failures retry */
                for (long i = 0; i < connections && handshaking < inflight; i++) {
                    if (conns[i].phase != p_free) continue;
                    if (opened >= connections + connections / 10 + 100) break; /* give up on retries */
                    start(&conns[i]);
                    opened++;
                    handshaking++;
                }
            }
        }
        int n = epoll_wait(ep, fired, 256, 10);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int k = 0; k < n; k++) {
            struct conn *c = fired[k].data.ptr;
            if (c->phase == p_done) { /* echo after its last message: leave it be */
                watch(c, 0);
                continue;
            }
            advance(c, end);
        }
    }
    double elapsed = (mode == m_idle ? setup_end : now()) - began;

    uint64_t held = 0;
    for (long i = 0; i < connections; i++)
        if (conns[i].phase == p_idle) held++;
    if (mode == m_idle) completed = held;

    qsort(lat, lat_len, sizeof *lat, by_value);
    unsigned long total = 0;
    for (int k = 0; k < kinds; k++) total += errors[k];
    static const char *const mode_names[] = {"greet", "echo", "idle"};
    printf("{\"mode\": \"%s\", \"tls\": %s, \"completed\": %llu, \"errors\": %lu, \"errors_by_kind\": {",
           mode_names[mode], plain ? "false" : "true", (unsigned long long)completed, total);
    for (int k = 0; k < kinds; k++) printf("%s\"%s\": %lu", k ? ", " : "", kind_names[k], errors[k]);
    printf("}, \"rate\": %.3f, \"duration_s\": %.6f, \"connections\": %ld, \"handshakes\": %llu, \"resumed\": %llu",
           (double)(mode == m_idle ? handshakes : completed) / elapsed, elapsed, connections,
           (unsigned long long)handshakes, (unsigned long long)resumed);
    if (mode == m_echo) printf(", \"size\": %zu", size);
    if (mode == m_idle)
        printf(", \"held\": %llu, \"established\": %llu, \"no_ticket\": %llu, \"hold_s\": %g",
               (unsigned long long)held, (unsigned long long)established, (unsigned long long)no_ticket, hold);
    printf(", \"latency_us\": {\"p50\": %u, \"p90\": %u, \"p99\": %u, \"p999\": %u, \"max\": %u}}\n",
           percentile(50), percentile(90), percentile(99), percentile(99.9), lat_len ? lat[lat_len - 1] : 0);
    return 0;
}
