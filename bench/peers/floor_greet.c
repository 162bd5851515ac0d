/* floor_greet: the least a greeting server can do, as a benchmark baseline.
 *
 * One thread, one epoll set, level-triggered. TCP_DEFER_ACCEPT lets the kernel
 * hand over a connection only once the client's bytes have arrived, so the
 * usual path is accept4, read, write, close with no extra epoll round trip.
 * No timeouts and no per-connection logging: this is the floor, not a server.
 *
 * usage: peer-floor-greet PORT   (0 picks a free port)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static const char welcome[] = "welcome to server!";
static const char go_out[] = "please go out!";

static void die(const char *what) {
    perror(what);
    exit(1);
}

static int open_listener(unsigned short port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1, defer_seconds = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) die("setsockopt SO_REUSEADDR");
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

/* Returns 0 once the connection is answered and closed, -1 if it has no data yet. */
static int greet(int fd) {
    char buf[1024];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return -1;
    if (n >= 0) { /* EOF counts as "not 1", as in the seed's recv() == '' */
        int ok = n == 1 && buf[0] == '1';
        ssize_t w = ok ? write(fd, welcome, sizeof welcome - 1) : write(fd, go_out, sizeof go_out - 1);
        (void)w; /* 18 bytes into an empty send buffer; a failure means the peer is gone */
    }
    close(fd); /* closing also drops the fd from the epoll set */
    return 0;
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
            if (fd != lfd) {
                greet(fd); /* level-triggered: if still no data, it fires again */
                continue;
            }
            for (;;) {
                int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) break; /* EAGAIN, or EMFILE: try again on the next wakeup */
                if (greet(cfd) < 0) {
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev) < 0) close(cfd);
                }
            }
        }
    }
    return 0;
}
