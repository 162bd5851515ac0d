#include "chat/server.hpp"

#include "greet/cli.hpp"
#include "greet/engine.hpp"
#include "greet/host.hpp"

#include <sock/async_stream.hpp>
#include <sock/coro.hpp>
#include <sock/server.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace chat {

namespace {

using namespace std::chrono_literals;

/// After a line too long, how long and how much the client's remaining input is read and
/// dropped before closing: closing with unread input would reset the connection, and the
/// reset could overtake the error line.
constexpr auto discard_time = 2s;
constexpr std::size_t discard_bytes = 4 * 1024 * 1024;

/// SO_LINGER 0: close() resets the connection and drops what the kernel still holds for it.
void reset_on_close(sock::socket& s) noexcept {
    std::error_code ec;
    const ::linger reset{1, 0};
    s.setsockopt(SOL_SOCKET, SO_LINGER, &reset, sizeof reset, ec);
}

/// The writer's end when its client fell more than the backlog behind.
struct too_slow : std::runtime_error {
    too_slow() : std::runtime_error("too slow") {}
};

/// A connection as a room member, on its loop: the lines waiting for it, and the event that
/// wakes the coroutine sending them. The event wakes it on the loop's next turn, so nothing
/// resumes inside the room's walk over its members.
class client final : public room::member {
public:
    client(sock::async_socket& conn, std::size_t max_backlog, std::string peer,
           const std::function<void(std::string_view)>& log)
        : conn_(&conn), loop_(conn.loop()), out_(max_backlog), peer_(std::move(peer)), log_(log) {
        stuck_.self = this;
        stuck_.fire = [](sock::timer& t) { static_cast<stuck_timer&>(t).self->on_stuck(); };
    }
    ~client() {
        if (stuck_.armed()) loop_->cancel(stuck_);
    }

    void deliver(const message& m) override {
        if (out_.overflowed()) return;
        if (!out_.push(m)) {
            log_(peer_ + ": more than " + std::to_string(out_.bound()) +
                 " bytes waiting for it: disconnected");
            // The writer may be stuck in a send to a client that does not read: see on_stuck.
            if (!stuck_.armed()) loop_->start(stuck_, 0ns);
            more_.set();
            return;
        }
        more_.set();
    }

    /// No more lines will come for it: send what is queued, and `last` if given, then stop.
    void finish(std::string last = {}) {
        closing_ = true;
        if (!last.empty() && !out_.overflowed())
            out_.push_unbounded(std::make_shared<const std::string>(std::move(last)));
        more_.set();
    }

    backlog& out() noexcept { return out_; }
    bool closing() const noexcept { return closing_; }

    /// `co_await c.more()`: until something was delivered or finish() was called. Wakes with
    /// operation_canceled when its task is cancelled (a server's stop, or when_all's).
    sock::task<> more() {
        co_await more_.wait();
        more_.clear();
    }

private:
    struct stuck_timer : sock::timer {
        client* self = nullptr;
    };

    // On the loop, out of anyone's call stack: the writer may wait in a send that will not
    // end, so reset the connection (nothing more goes out), which wakes the writer and the
    // reader with operation_canceled. Nothing of this client is touched after the close.
    void on_stuck() {
        if (!out_.overflowed()) return;
        reset_on_close(conn_->raw());
        conn_->close();
    }

    sock::async_socket* conn_;
    sock::event_loop* loop_;
    backlog out_;
    std::string peer_;
    const std::function<void(std::string_view)>& log_;
    sock::async_event more_;
    stuck_timer stuck_;
    bool closing_ = false;
};

/// Says each complete line the client sends; at its end, or a line too long, leaves.
sock::task<> read_lines(sock::async_socket& conn, room& r, client& c, bool& overran) {
    sock::stream_reader reader(conn, max_line);
    std::error_code ec;
    for (;;) {
        const std::string_view line = co_await reader.readline(ec);
        if (ec == sock::stream_errc::limit_overrun) {
            overran = true;
            r.leave(c);
            c.finish(line_too_long_error());
            co_return;
        }
        // End of stream (a last line without "\n" is not a line), an error or a cancel.
        if (ec || line.empty() || line.back() != '\n') break;
        r.say(c, std::make_shared<const std::string>(line));
        if (reader.buffered().find('\n') == std::string_view::npos) {
            // Before the next receive, let this loop's writers send what was said: a
            // receive that finds data does not wait, and a client sending fast would
            // otherwise fill every backlog before anyone else runs. As asyncio's sleep(0),
            // this runs the wake-ups of the writers that say() set, then resumes.
            try {
                co_await sock::sleep(0ns);
            } catch (const sock::error&) {
                break;  // cancelled
            }
        }
    }
    r.leave(c);
    c.finish();
}

/// Sends the client what the room delivers, a batch per send, until finish() or too slow.
sock::task<> send_lines(client& c, sock::stream_writer<>& writer) {
    for (;;) {
        if (c.out().overflowed()) throw too_slow();
        if (c.out().empty()) {
            if (c.closing()) co_return;
            co_await c.more();
            continue;
        }
        while (auto m = c.out().pop()) writer.write(*m);  // within the bound: see serve_client
        co_await writer.drain();
        c.out().drained();
    }
}

/// Reads and drops what the client still sends, until it closes or the limits pass.
sock::task<> discard_input(sock::async_socket& conn) {
    std::array<char, 4096> buf;
    std::size_t total = 0;
    while (total < discard_bytes) {
        const std::size_t n = co_await conn.recv_into(buf);
        if (n == 0) break;
        total += n;
    }
}

}  // namespace

sock::task<> serve_client(sock::async_socket conn, room& r, std::size_t max_backlog,
                          const std::function<void(std::string_view)>& log) {
    conn.settimeout(std::nullopt);  // a chat client may listen for ever
    std::error_code ec;
    std::string peer = conn.raw().getpeername(ec).to_string();
    if (ec) peer = "client";
    client c(conn, max_backlog, std::move(peer), log);
    // Queued and in-flight bytes stay within max_backlog; the error line may come on top.
    sock::stream_writer writer(conn, max_backlog + line_too_long_error().size());
    sock::event_loop* loop = conn.loop();
    r.join(c, loop, [loop](std::function<void()> fn) { loop->post(std::move(fn)); });

    bool overran = false;
    std::vector<sock::task<>> halves;
    halves.push_back(read_lines(conn, r, c, overran));
    halves.push_back(send_lines(c, writer));
    try {
        co_await sock::when_all(std::move(halves));
    } catch (const std::exception&) {
        // The client went away, was too slow, or the server is stopping: all end here.
    }
    r.leave(c);
    if (c.out().overflowed()) {
        reset_on_close(conn.raw());  // nothing more goes out (already closed if it was stuck)
        co_return;
    }
    if (overran) {
        conn.shutdown(sock::shut::wr, ec);  // the error line is out: end of stream
        try {
            co_await sock::wait_for(discard_input(conn), discard_time);
        } catch (const std::exception&) {
        }
    }
}

void run_server(const server_config& config, std::vector<sock::socket> inherited) {
    room r;
    sock::server_config engine =
        greet::interactive_engine(config.threads, config.max_connections, config.reuse_port);
    if (!inherited.empty()) engine.inherited = std::move(inherited);
    else engine.listen.push_back(greet::listen_address(config.host, config.port, sock::kind::stream));
    const std::function<void(std::string_view)> log = [](std::string_view line) {
        greet::cli::write_line(2, std::string(line));
    };
    const std::size_t max_backlog = config.max_backlog;
    sock::server server(std::move(engine), [&r, &log, max_backlog](sock::async_socket s) {
        return serve_client(std::move(s), r, max_backlog, log);
    });
    for (const auto& where : server.addresses())
        greet::cli::write_stdout("listening on " + where.to_string() + "\n");
    server.run();
}

}  // namespace chat
