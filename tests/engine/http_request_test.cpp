// The metrics endpoint's HTTP reader and answers as pure code: bytes in, verdict and bytes out.

#include <sock/metrics_endpoint.hpp>

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace {

int status_of(std::string_view bytes) { return sock::parse_http_request(bytes).status; }

TEST(HttpRequest, AWholeHeadGivesMethodAndPathWithoutQuery) {
    const auto r = sock::parse_http_request(
        "GET /metrics?x=1 HTTP/1.1\r\nHost: localhost:9100\r\nAccept: */*\r\n"
        "X-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.path, "/metrics");
    EXPECT_EQ(status_of("HEAD /healthz HTTP/1.0\r\n\r\n"), 200);  // 1.0 needs no Host
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nhOsT:\tx \r\nContent-Length: 0\r\n\r\n"), 200);
}

TEST(HttpRequest, AnUnfinishedHeadAsksForMore) {
    EXPECT_EQ(status_of(""), 0);
    EXPECT_EQ(status_of("GET /metrics HT"), 0);
    EXPECT_EQ(status_of("GET /metrics HTTP/1.1\r\nHost: x\r\n"), 0);
    EXPECT_EQ(status_of("GET /metrics HTTP/1.1\r\nHost: x\r\n\r"), 0);
}

TEST(HttpRequest, MalformedHeadsAre400) {
    EXPECT_EQ(status_of("GET /metrics HTTP/1.1\nHost: x\n\n"), 400);          // bare LF
    EXPECT_EQ(status_of("GET /metrics\rHTTP/1.1\r\n\r\n"), 400);              // bare CR
    EXPECT_EQ(status_of("\x16\x03\x01\x02\x00\x01"), 400);                     // TLS, at once
    EXPECT_EQ(status_of("GET  /metrics HTTP/1.0\r\n\r\n"), 400);               // two spaces
    EXPECT_EQ(status_of("GET /metrics\r\n\r\n"), 400);                         // HTTP/0.9
    EXPECT_EQ(status_of("GET metrics HTTP/1.0\r\n\r\n"), 400);                 // not origin-form
    EXPECT_EQ(status_of("GET http://x/metrics HTTP/1.0\r\n\r\n"), 400);
    EXPECT_EQ(status_of("G(T / HTTP/1.0\r\n\r\n"), 400);                       // not a token
    EXPECT_EQ(status_of("GET / HTTP/1.10\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / http/1.1\r\nHost: x\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\n\r\n"), 400);                       // no Host
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400); // two
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), 400);           // space before :
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n"), 400); // obs-fold
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n"), 400);
    EXPECT_EQ(status_of(std::string("GET / HTTP/1.0\r\nA: \0\r\n\r\n", 24)), 400);
}

TEST(HttpRequest, OtherVersionsAre505AndLongHeads431) {
    EXPECT_EQ(status_of("GET / HTTP/2.0\r\n\r\n"), 505);
    EXPECT_EQ(status_of("GET / HTTP/0.9\r\n\r\n"), 505);
    std::string big = "GET / HTTP/1.1\r\nHost: x\r\nA: " + std::string(200, 'a');
    EXPECT_EQ(sock::parse_http_request(big, 100).status, 431);  // no end within the limit
    EXPECT_EQ(sock::parse_http_request(big + "\r\n\r\n", 100).status, 431);
    EXPECT_EQ(sock::parse_http_request(big + "\r\n\r\n", big.size() + 4).status, 200);
    EXPECT_EQ(sock::http_head_limit, 8192u);
}

sock::metrics_routes routes(bool healthy) {
    return {[] { return std::string("m 1\n"); }, [healthy] { return healthy; }};
}

TEST(HttpAnswer, MetricsAndHealth) {
    const auto get = sock::parse_http_request("GET /metrics HTTP/1.0\r\n\r\n");
    EXPECT_EQ(sock::answer_http(get, routes(true)),
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
              "Content-Length: 4\r\nConnection: close\r\n\r\nm 1\n");
    const auto health = sock::parse_http_request("GET /healthz HTTP/1.0\r\n\r\n");
    EXPECT_EQ(sock::answer_http(health, routes(true)),
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: 3\r\nConnection: close\r\n\r\nok\n");
    EXPECT_EQ(sock::answer_http(health, routes(false)),
              "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: 9\r\nConnection: close\r\n\r\nstopping\n");
    const auto head = sock::parse_http_request("HEAD /metrics HTTP/1.0\r\n\r\n");
    EXPECT_EQ(sock::answer_http(head, routes(true)),
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
              "Content-Length: 4\r\nConnection: close\r\n\r\n");
}

TEST(HttpAnswer, ErrorsSayWhat) {
    auto answer = [](std::string_view bytes) {
        return sock::answer_http(sock::parse_http_request(bytes), routes(true));
    };
    EXPECT_EQ(answer("POST /metrics HTTP/1.0\r\n\r\n"),
              "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: 19\r\nAllow: GET, HEAD\r\nConnection: close\r\n\r\n"
              "method not allowed\n");
    EXPECT_EQ(answer("GET /other HTTP/1.0\r\n\r\n").substr(0, 24), "HTTP/1.1 404 Not Found\r\n");
    EXPECT_EQ(answer("GET /metrics/ HTTP/1.0\r\n\r\n").substr(0, 24), "HTTP/1.1 404 Not Found\r\n");
    EXPECT_EQ(answer("junk\r\n\r\n").substr(0, 26), "HTTP/1.1 400 Bad Request\r\n");
    EXPECT_EQ(answer("GET / HTTP/3.0\r\n\r\n").substr(0, 41), "HTTP/1.1 505 HTTP Version Not Supported\r\n");
    sock::metrics_routes failing{[]() -> std::string { throw std::runtime_error("x"); }, {}};
    EXPECT_EQ(sock::answer_http(sock::parse_http_request("GET /metrics HTTP/1.0\r\n\r\n"), failing)
                  .substr(0, 36),
              "HTTP/1.1 500 Internal Server Error\r\n");
}

}  // namespace
