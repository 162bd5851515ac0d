#include <sock/metrics_endpoint.hpp>

#include <sock/coro.hpp>
#include <sock/create.hpp>
#include <sock/error.hpp>

#include <array>
#include <cstdio>
#include <exception>
#include <memory>

namespace sock SOCK_API {

namespace {

using namespace std::chrono_literals;

// After the response: how long, and how much, a client may still send before the close.
constexpr auto drain_time = 1s;
constexpr std::size_t drain_limit = 64 * 1024;
constexpr int listen_backlog = 64;

constexpr std::string_view exposition_type = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view text_type = "text/plain; charset=utf-8";

// RFC 9110's tchar: what a method and a field name are made of.
bool token_char(unsigned char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool token(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (unsigned char c : s)
        if (!token_char(c)) return false;
    return true;
}

bool equal_ignoring_case(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Request line: METHOD SP origin-form SP HTTP/d.d. Returns 200, 400 or 505.
int parse_request_line(std::string_view line, http_request& r, int& minor) {
    const auto sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) return 400;
    const auto sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return 400;
    const auto method = line.substr(0, sp1);
    const auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const auto version = line.substr(sp2 + 1);
    if (!token(method) || target.empty() || target.front() != '/') return 400;
    for (unsigned char c : target)
        if (c <= 0x20 || c >= 0x7f) return 400;
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (version.size() != 8 || !version.starts_with("HTTP/") || !digit(version[5]) ||
        version[6] != '.' || !digit(version[7]))
        return 400;
    if (version[5] != '1') return 505;
    minor = version[7] - '0';
    r.method = method;
    r.path = target.substr(0, target.find('?'));
    return 200;
}

// One field line: name ":" OWS value OWS, no space before the colon, no obs-fold.
int parse_field(std::string_view line, int& hosts) {
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || !token(line.substr(0, colon))) return 400;
    const auto name = line.substr(0, colon);
    const auto value = trim_ows(line.substr(colon + 1));
    for (unsigned char c : value)
        if ((c < 0x20 && c != '\t') || c == 0x7f) return 400;
    if (equal_ignoring_case(name, "host")) ++hosts;
    if (equal_ignoring_case(name, "content-length")) {
        if (value.empty()) return 400;
        for (char c : value)
            if (c < '0' || c > '9') return 400;
    }
    return 200;
}

const char* reason(int status) noexcept {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

std::string plain(int status, bool head_only = false) {
    std::string body = reason(status);
    for (auto& c : body) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return http_response(status, text_type, body + "\n", head_only);
}

std::chrono::nanoseconds left_until(std::chrono::steady_clock::time_point deadline) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - std::chrono::steady_clock::now());
}

http_request failed(int status) noexcept {
    http_request r;
    r.status = status;
    return r;
}

}  // namespace

http_request parse_http_request(std::string_view received, std::size_t limit) {
    http_request r;
    // Bare CR or LF, and control characters, are refused as soon as they arrive, so that a
    // client sending binary gets its 400 at once instead of at the timeout.
    for (std::size_t i = 0; i < received.size(); ++i) {
        const auto c = static_cast<unsigned char>(received[i]);
        if (c == '\n' && (i == 0 || received[i - 1] != '\r')) return failed(400);
        if (c == '\r' && i + 1 < received.size() && received[i + 1] != '\n') return failed(400);
        if ((c < 0x20 && c != '\r' && c != '\n' && c != '\t') || c == 0x7f) return failed(400);
    }
    const auto end = received.find("\r\n\r\n");
    if (end == std::string_view::npos || end + 4 > limit) {
        if (received.size() >= limit) return failed(431);
        return {};
    }
    std::string_view head = received.substr(0, end + 2);  // each line with its CRLF
    auto next_line = [&head] {
        const auto eol = head.find("\r\n");
        const auto line = head.substr(0, eol);
        head.remove_prefix(eol + 2);
        return line;
    };
    int minor = 0;
    if (const int s = parse_request_line(next_line(), r, minor); s != 200) return failed(s);
    int hosts = 0;
    while (!head.empty()) {
        if (const int s = parse_field(next_line(), hosts); s != 200) return failed(s);
    }
    if (hosts > 1 || (minor >= 1 && hosts != 1)) return failed(400);
    r.status = 200;
    return r;
}

std::string http_response(int status, std::string_view content_type, std::string_view body,
                          bool head_only) {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n";
    out += "Content-Type: ";
    out += content_type;
    out += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    if (status == 405) out += "Allow: GET, HEAD\r\n";
    out += "Connection: close\r\n\r\n";
    if (!head_only) out += body;
    return out;
}

std::string answer_http(const http_request& r, const metrics_routes& routes) {
    if (r.status != 200) return plain(r.status == 0 ? 400 : r.status);
    const bool head = r.method == "HEAD";
    if (r.method != "GET" && !head) return plain(405);
    if (r.path == "/healthz") {
        const bool up = routes.healthy ? routes.healthy() : true;
        return http_response(up ? 200 : 503, text_type, up ? "ok\n" : "stopping\n", head);
    }
    if (r.path == "/metrics") {
        try {
            return http_response(200, exposition_type, routes.metrics ? routes.metrics() : "", head);
        } catch (const std::exception&) {
            return plain(500, head);
        }
    }
    return plain(404, head);
}

task<> serve_http(async_socket conn, const metrics_routes& routes, std::chrono::nanoseconds timeout) {
    // Per scrape, not per greeting: a buffer of its own keeps a head that arrives in pieces.
    std::string buf(http_head_limit, '\0');
    std::size_t got = 0;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string response;
    std::error_code ec;
    for (;;) {
        const auto request = parse_http_request({buf.data(), got});
        if (request.status != 0) {
            response = answer_http(request, routes);
            break;
        }
        const auto left = left_until(deadline);
        if (left <= left.zero()) {
            response = plain(408);
            break;
        }
        conn.settimeout(left);
        const std::size_t n = co_await conn.recv_into({buf.data() + got, buf.size() - got}, ec);
        if (ec == std::errc::timed_out) {
            response = plain(408);
            break;
        }
        if (ec || n == 0) co_return;  // gone, or the server is stopping
        got += n;
    }
    conn.settimeout(timeout);
    co_await conn.sendall(response, ec);
    if (ec) co_return;
    // The FIN goes right after the response; input still unread at close would turn it into
    // a reset that can destroy the response at the client, so swallow it until the client
    // closes, within one deadline and one byte count.
    conn.shutdown(shut::wr, ec);
    if (ec) co_return;
    const auto drain_deadline = std::chrono::steady_clock::now() + drain_time;
    std::array<char, 1024> sink;
    for (std::size_t drained = 0; drained < drain_limit;) {
        const auto left = left_until(drain_deadline);
        if (left <= left.zero()) break;
        conn.settimeout(left);
        const std::size_t n = co_await conn.recv_into(sink, ec);
        if (ec || n == 0) break;
        drained += n;
    }
}

namespace {

server_config endpoint_server(const metrics_endpoint_config& c) {
    server_config s;
    s.listen = {c.listen};
    s.threads = 1;
    s.max_connections = c.max_connections;
    s.grace = 1s;
    s.backlog = listen_backlog;
    s.handle_signals = false;  // the server it reports on handles them
    s.log = c.log;
    return s;
}

// Scrapes in flight on a host's loop, and the wake-up when one ends at the limit.
struct scrape_room {
    std::size_t open = 0;
    async_event freed;
};

void scrape_done(void* room, std::exception_ptr) noexcept {
    auto& r = *static_cast<scrape_room*>(room);
    --r.open;
    r.freed.set();
}

}  // namespace

metrics_endpoint::metrics_endpoint(metrics_endpoint_config config)
    : routes_(std::move(config.routes)),
      timeout_(config.timeout),
      max_connections_(config.max_connections),
      log_(config.log),
      own_(std::make_unique<server>(
          endpoint_server(config),
          [this](async_socket conn) { return serve_http(std::move(conn), routes_, timeout_); })) {
    address_ = own_->addresses().front();
    thread_ = std::thread([this] {
        try {
            own_->run();
        } catch (const std::exception& e) {
            log(std::string("metrics endpoint: ") + e.what());
        }
    });
}

metrics_endpoint::metrics_endpoint(metrics_endpoint_config config, server& host)
    : routes_(std::move(config.routes)),
      timeout_(config.timeout),
      max_connections_(config.max_connections),
      log_(config.log) {
    server_options options;
    options.family = config.listen.family();
    options.backlog = listen_backlog;
    socket listener = create_server(config.listen, options);
    address_ = listener.getsockname();
    // std::function must be copyable: the listener waits in a shared slot for the one call.
    auto slot = std::make_shared<socket>(std::move(listener));
    host.add_service([this, slot] { return serve_on_host(std::move(*slot)); });
}

metrics_endpoint::~metrics_endpoint() {
    if (!own_) return;
    own_->stop();
    thread_.join();
}

void metrics_endpoint::log(const std::string& line) const {
    if (log_) log_(line);
    else std::fprintf(stderr, "%s\n", line.c_str());
}

task<> metrics_endpoint::serve_on_host(socket listener) {
    async_socket l(std::move(listener), *event_loop::current());
    scrape_room room;
    task_set scrapes;  // after room: destroyed first, while scrape_done can still count
    for (;;) {
        if (max_connections_ != 0 && room.open >= max_connections_) {
            room.freed.clear();
            co_await room.freed.wait();
            continue;
        }
        std::error_code ec;
        async_socket conn = co_await l.accept(ec);
        if (ec == std::errc::operation_canceled) co_return;  // the loop is ending
        if (ec) {
            // Out of descriptors, most likely: a scrape can wait; the greetings come first.
            log("metrics endpoint: accept " + address_.to_string() + ": " + error_reason(ec) +
                "; pausing accepts for 100 ms");
            try {
                co_await sleep(100ms);
            } catch (const error&) {
                co_return;  // cancelled: the loop is ending
            }
            continue;
        }
        ++room.open;
        scrapes.spawn(serve_http(std::move(conn), routes_, timeout_), &scrape_done, &room);
    }
}

}  // namespace sock
