/* line_load: the load generator of W5 (line echo), not a system under test.
 *
 * N connections on one epoll set, one thread. Each connection sends a batch of
 * L lines of S bytes (the last one '\n', the others printable and different for
 * every line of every batch) in one write, reads until the whole batch came
 * back, checks it byte for byte, and sends the next batch, until the duration
 * is over; batches still in flight then are neither counted nor errors. A
 * connection that fails (reset, end of stream, wrong bytes, no answer within
 * the timeout) counts one error and is replaced by a new one.
 *
 * Prints one line of JSON, in greet-bench --json's shape: lines echoed
 * ("completed"), errors by kind, lines per second, and the latency of a batch
 * (from its write to its last byte back) in microseconds.
 *
 * usage: peer-line-load --host H --port P [--connections 100] [--duration 3]
 *                       [--lines 16] [--size 64] [--timeout 5] [--json]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum kind { k_connect, k_reset, k_eof, k_mismatch, k_timeout, k_short_write, kinds };
static const char *const kind_names[kinds] = {"connect", "reset", "eof", "mismatch", "timeout", "short_write"};

struct conn {
    int fd;
    uint64_t batch;  /* sequence number of the batch in flight */
    size_t got;      /* bytes of it received */
    double sent_at;  /* when it was written */
    int busy;        /* a batch is in flight */
    char *sent, *back;
};

static struct sockaddr_in server;
static size_t lines = 16, size = 64, batch_len;
static unsigned long errors[kinds];
static uint64_t done_lines;
static uint32_t *lat;
static size_t lat_len, lat_cap;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static int open_conn(int ep, struct conn *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&server, sizeof server) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl ADD");
    c->fd = fd;
    c->busy = 0;
    return 0;
}

/* Line j of batch b on connection i: "i b j " then letters that shift with b and j. */
static void fill(struct conn *c, size_t i) {
    for (size_t j = 0; j < lines; j++) {
        char *line = c->sent + j * size;
        int n = snprintf(line, size, "%zu %llu %zu ", i, (unsigned long long)c->batch, j);
        if (n < 0 || (size_t)n > size - 1) n = (int)(size - 1);
        for (size_t k = (size_t)n; k < size - 1; k++) line[k] = (char)('a' + (k + j + c->batch) % 26);
        line[size - 1] = '\n';
    }
}

static void fail(int ep, struct conn *c, enum kind why) {
    errors[why]++;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->busy = 0;
}

/* One write; the batch before was answered whole, so the send buffer has room. */
static void send_batch(int ep, struct conn *c, size_t i) {
    c->batch++;
    fill(c, i);
    c->got = 0;
    c->sent_at = now();
    c->busy = 1;
    ssize_t w = send(c->fd, c->sent, batch_len, MSG_NOSIGNAL);
    if (w != (ssize_t)batch_len) fail(ep, c, w < 0 ? k_reset : k_short_write);
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

static void usage(const char *argv0) {
    fprintf(stderr, "usage: %s --host H --port P [--connections N] [--duration S] [--lines L] "
                    "[--size B] [--timeout S] [--json]\n", argv0);
    exit(2);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    long port = -1, connections = 100;
    double duration = 3, timeout = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) continue; /* always JSON */
        if (i + 1 >= argc) usage(argv[0]);
        const char *v = argv[++i];
        if (strcmp(a, "--host") == 0) host = v;
        else if (strcmp(a, "--port") == 0) port = atol(v);
        else if (strcmp(a, "--connections") == 0) connections = atol(v);
        else if (strcmp(a, "--duration") == 0) duration = atof(v);
        else if (strcmp(a, "--lines") == 0) lines = (size_t)atol(v);
        else if (strcmp(a, "--size") == 0) size = (size_t)atol(v);
        else if (strcmp(a, "--timeout") == 0) timeout = atof(v);
        else usage(argv[0]);
    }
    if (port < 1 || port > 65535 || connections < 1 || lines < 1 || size < 16 || duration <= 0) usage(argv[0]);
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &server.sin_addr) != 1) usage(argv[0]);
    batch_len = lines * size;

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct conn *conns = calloc((size_t)connections, sizeof *conns);
    if (!conns) die("calloc");
    for (long i = 0; i < connections; i++) {
        conns[i].sent = malloc(batch_len);
        conns[i].back = malloc(batch_len);
        if (!conns[i].sent || !conns[i].back) die("malloc");
        conns[i].batch = 0;
        conns[i].fd = -1;
        if (open_conn(ep, &conns[i]) < 0) errors[k_connect]++;
    }

    const double start = now(), end = start + duration;
    double last_connect_failure = 0, next_scan = start;
    struct epoll_event fired[256];
    for (;;) {
        double t = now();
        if (t >= end) break; /* what is still in flight is neither counted nor an error */
        if (t >= next_scan) { /* every 10 ms: timeouts, replacements, first batches */
            next_scan = t + 0.01;
            for (long i = 0; i < connections; i++) {
                struct conn *c = &conns[i];
                if (c->fd >= 0 && c->busy && t - c->sent_at > timeout) fail(ep, c, k_timeout);
                if (c->fd < 0 && t - last_connect_failure > 0.01 && open_conn(ep, c) < 0) {
                    errors[k_connect]++;
                    last_connect_failure = t;
                }
                if (c->fd >= 0 && !c->busy) send_batch(ep, c, (size_t)i);
            }
        }
        int n = epoll_wait(ep, fired, 256, 10);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int k = 0; k < n; k++) {
            struct conn *c = fired[k].data.ptr;
            if (c->fd < 0) continue;
            ssize_t r = read(c->fd, c->back + c->got, batch_len - c->got);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (r < 0) { fail(ep, c, k_reset); continue; }
            if (r == 0 || !c->busy) { fail(ep, c, r == 0 ? k_eof : k_mismatch); continue; }
            c->got += (size_t)r;
            if (c->got < batch_len) continue;
            if (memcmp(c->sent, c->back, batch_len) != 0) { fail(ep, c, k_mismatch); continue; }
            double t2 = now();
            record(t2 - c->sent_at);
            done_lines += lines;
            c->busy = 0;
            if (t2 < end) send_batch(ep, c, (size_t)(c - conns));
        }
    }
    double elapsed = now() - start;

    qsort(lat, lat_len, sizeof *lat, by_value);
    unsigned long total = 0;
    for (int k = 0; k < kinds; k++) total += errors[k];
    printf("{\"completed\": %llu, \"errors\": %lu, \"errors_by_kind\": {", (unsigned long long)done_lines, total);
    for (int k = 0; k < kinds; k++) printf("%s\"%s\": %lu", k ? ", " : "", kind_names[k], errors[k]);
    printf("}, \"rate\": %.3f, \"duration_s\": %.6f, \"batches\": %zu, \"lines_per_batch\": %zu, \"line_size\": %zu",
           (double)done_lines / elapsed, elapsed, lat_len, lines, size);
    printf(", \"latency_us\": {\"p50\": %u, \"p90\": %u, \"p99\": %u, \"p999\": %u, \"max\": %u}}\n",
           percentile(50), percentile(90), percentile(99), percentile(99.9), lat_len ? lat[lat_len - 1] : 0);
    return 0;
}
