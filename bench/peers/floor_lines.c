/* floor_lines: the least a line-echo server can do, as the W5 baseline.
 *
 * One thread, one epoll set, level-triggered, like floor_echo.c. A read of up to
 * 64 KiB lands right after the connection's unfinished line (if any); the bytes
 * are split into lines by hand with memchr, and every complete line goes back in
 * one write. The unfinished tail waits in a per-connection buffer for the rest
 * of its line; a line longer than 64 KiB closes the connection. Only when the
 * kernel takes part of a write does the rest go to a per-connection buffer, and
 * the connection waits for EPOLLOUT (not reading) until that buffer is flushed.
 *
 * usage: peer-floor-lines PORT   (0 picks a free port)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { read_size = 64 * 1024, max_line = 64 * 1024 };

/* Per fd: the unfinished line and the bytes the kernel has not taken yet; both empty
 * for nearly every fd between reads. */
struct conn {
    char *line; /* max_line bytes once needed */
    size_t line_len;
    char *out;
    size_t out_len, out_off;
};
static struct conn *conns;
static size_t conns_cap;

static void die(const char *what) {
    perror(what);
    exit(1);
}

static int open_listener(unsigned short port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) die("setsockopt SO_REUSEADDR");
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

static struct conn *conn_for(int fd) {
    if ((size_t)fd >= conns_cap) {
        size_t cap = conns_cap ? conns_cap : 1024;
        while (cap <= (size_t)fd) cap *= 2;
        conns = realloc(conns, cap * sizeof *conns);
        if (!conns) die("realloc");
        memset(conns + conns_cap, 0, (cap - conns_cap) * sizeof *conns);
        conns_cap = cap;
    }
    return &conns[fd];
}

static void drop(int fd) {
    struct conn *c = conn_for(fd);
    free(c->line);
    free(c->out);
    *c = (struct conn){0};
    close(fd); /* closing also drops the fd from the epoll set */
}

static void watch(int ep, int fd, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0) die("epoll_ctl MOD");
}

static void on_readable(int ep, int fd) {
    static char buf[max_line + read_size];
    struct conn *c = conn_for(fd);
    size_t have = c->line_len;
    if (have) memcpy(buf, c->line, have);
    ssize_t n = read(fd, buf + have, read_size);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        drop(fd);
        return;
    }
    /* Split: find each line's end; everything up to the last one goes back. */
    const char *p = buf + have, *end = buf + have + n, *rest = buf;
    const char *nl;
    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) rest = p = nl + 1;
    size_t tail = (size_t)(end - rest);
    if (tail > max_line - 1) {
        drop(fd);
        return;
    }
    if (tail) {
        if (!c->line && !(c->line = malloc(max_line))) die("malloc");
        memmove(c->line, rest, tail);
    }
    c->line_len = tail;
    size_t lines = (size_t)(rest - buf);
    if (lines == 0) return;
    ssize_t w = write(fd, buf, lines);
    if (w < 0 && errno != EAGAIN) {
        drop(fd);
        return;
    }
    if (w < 0) w = 0;
    if ((size_t)w == lines) return;
    c->out_len = lines - (size_t)w;
    c->out_off = 0;
    c->out = malloc(c->out_len);
    if (!c->out) die("malloc");
    memcpy(c->out, buf + w, c->out_len);
    watch(ep, fd, EPOLLOUT);
}

static void on_writable(int ep, int fd) {
    struct conn *c = conn_for(fd);
    ssize_t w = write(fd, c->out + c->out_off, c->out_len - c->out_off);
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR) drop(fd);
        return;
    }
    c->out_off += (size_t)w;
    if (c->out_off < c->out_len) return;
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    watch(ep, fd, EPOLLIN);
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
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    sigset_t wait_mask;
    catch_stop_signals(&wait_mask);

    int lfd = open_listener((unsigned short)atoi(argv[1]));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
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
            int fd = fired[i].data.fd;
            if (fd == lfd) {
                for (;;) {
                    int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (cfd < 0) break; /* EAGAIN, or EMFILE: try again on the next wakeup */
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev) < 0) close(cfd);
                }
            } else if ((size_t)fd < conns_cap && conns[fd].out) {
                on_writable(ep, fd); /* an error or hangup shows up as a failed write */
            } else {
                on_readable(ep, fd); /* likewise, as a failed or empty read */
            }
        }
    }
    return 0;
}
