/* floor_echo: the least an echo server can do, as a ping-pong benchmark baseline.
 *
 * One thread, one epoll set, level-triggered. Each connection is registered once
 * for EPOLLIN; a read of up to 64 KiB is written straight back. Only when the
 * kernel takes part of it does the rest go to a per-connection buffer, and the
 * connection waits for EPOLLOUT (not reading) until that buffer is flushed.
 *
 * usage: peer-floor-echo PORT   (0 picks a free port)
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

enum { read_size = 64 * 1024 };

/* Bytes the kernel has not taken yet, indexed by fd; empty for nearly every fd. */
struct pending {
    char *data;
    size_t len, off;
};
static struct pending *pending;
static size_t pending_cap;

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

static struct pending *pending_for(int fd) {
    if ((size_t)fd >= pending_cap) {
        size_t cap = pending_cap ? pending_cap : 1024;
        while (cap <= (size_t)fd) cap *= 2;
        pending = realloc(pending, cap * sizeof *pending);
        if (!pending) die("realloc");
        memset(pending + pending_cap, 0, (cap - pending_cap) * sizeof *pending);
        pending_cap = cap;
    }
    return &pending[fd];
}

static void drop(int fd) {
    if ((size_t)fd < pending_cap) {
        free(pending[fd].data);
        pending[fd] = (struct pending){0};
    }
    close(fd); /* closing also drops the fd from the epoll set */
}

static void watch(int ep, int fd, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0) die("epoll_ctl MOD");
}

static void on_readable(int ep, int fd) {
    static char buf[read_size];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        drop(fd);
        return;
    }
    ssize_t w = write(fd, buf, (size_t)n);
    if (w < 0 && errno != EAGAIN) {
        drop(fd);
        return;
    }
    if (w < 0) w = 0;
    if (w == n) return;
    struct pending *p = pending_for(fd);
    p->len = (size_t)(n - w);
    p->off = 0;
    p->data = malloc(p->len);
    if (!p->data) die("malloc");
    memcpy(p->data, buf + w, p->len);
    watch(ep, fd, EPOLLOUT);
}

static void on_writable(int ep, int fd) {
    struct pending *p = pending_for(fd);
    ssize_t w = write(fd, p->data + p->off, p->len - p->off);
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR) drop(fd);
        return;
    }
    p->off += (size_t)w;
    if (p->off < p->len) return;
    free(p->data);
    *p = (struct pending){0};
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
            } else if ((size_t)fd < pending_cap && pending[fd].data) {
                on_writable(ep, fd); /* an error or hangup shows up as a failed write */
            } else {
                on_readable(ep, fd); /* likewise, as a failed or empty read */
            }
        }
    }
    return 0;
}
