// greet-server under systemd's protocols: sockets passed by socket activation (by Debian's
// systemd-socket-activate, and by the test itself as a manager would), notifications to a
// datagram socket of the test's own, and a restart behind a held socket that loses no greeting.

#include "programs.hpp"

#include <sock/create.hpp>
#include <sock/socket.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <iostream>
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace {

using namespace greet_test;
using namespace std::chrono_literals;

std::string greet_once(std::uint16_t port) {
    auto c = sock::create_connection({"127.0.0.1", port}, 10s);
    c.settimeout(10.0);
    c.sendall("1");
    std::string reply;
    for (std::string part; !(part = c.recv(1024)).empty();) reply += part;
    return reply;
}

/// A listening socket as a service manager holds it; servers get it at descriptor 3.
sock::socket held_listener() {
    sock::socket s(sock::family::inet, sock::kind::stream);
    s.bind({"127.0.0.1", 0});
    s.listen(4096);
    return s;
}

/// The service manager's end of $NOTIFY_SOCKET: an abstract datagram socket.
class notify_socket {
public:
    explicit notify_socket(const std::string& tag)
        : name_("@greet-test-" + std::to_string(::getpid()) + "-" + tag) {
        s_.bind(sock::address::unix_path(name_));
        s_.settimeout(20.0);
    }
    std::string env() const { return "NOTIFY_SOCKET=" + name_; }
    const std::string& name() const { return name_; }
    /// The first datagram matching `pattern` (those before it are dropped); throws
    /// sock::timeout if none comes within 20 s.
    std::string until(const std::regex& pattern) {
        for (;;) {
            std::string got = s_.recv(4096);
            if (std::regex_search(got, pattern)) return got;
        }
    }

private:
    std::string name_;
    sock::socket s_{sock::family::local, sock::kind::dgram};
};

/// "N accepted" out of a STATUS= line.
std::size_t accepted_in(const std::string& status) {
    std::smatch m;
    if (!std::regex_search(status, m, std::regex("(\\d+) accepted"))) return 0;
    return std::stoul(m[1]);
}

std::size_t json_number(const std::string& json, const std::string& key) {
    std::smatch m;
    if (!std::regex_search(json, m, std::regex("\"" + key + "\": (\\d+)")))
        throw std::runtime_error("no " + key + " in " + json);
    return std::stoul(m[1]);
}

// -- Debian's systemd-socket-activate -----------------------------------------------------------

/// systemd-socket-activate listening on 127.0.0.1 and a free port, running greet-server with
/// `env` on the first connection. The port is one the kernel just gave out and took back; if
/// something takes it meanwhile, another is tried.
struct activator {
    std::unique_ptr<child_process> process;
    std::uint16_t port = 0;

    explicit activator(const std::vector<std::string>& env) {
        for (int attempt = 0; attempt < 5; ++attempt) {
            port = held_listener().getsockname().port();  // closed again at once
            std::vector<std::string> argv{"systemd-socket-activate", "-l",
                                          "127.0.0.1:" + std::to_string(port)};
            for (const auto& e : env) argv.insert(argv.end(), {"-E", e});
            argv.insert(argv.end(), {bin("greet-server"), "--quiet"});
            process = std::make_unique<child_process>(argv);
            const auto line = process->read_line(stream::err, 10s);
            if (line && line->rfind("Listening on", 0) == 0) return;
            process->wait(5s);
            if (process->err().find("Address already in use") == std::string::npos)
                throw std::runtime_error("systemd-socket-activate did not listen: " + process->err());
        }
        throw std::runtime_error("systemd-socket-activate: no free port in 5 tries");
    }
};

TEST(SocketActivate, GreetServerServesTheSeedsClientAndGreetClient) {
    notify_socket manager("activate");
    activator a({manager.env()});
    // The first connection starts greet-server; it waits in the socket's queue meanwhile.
    auto seed = run({python3(), python_script("seed_client.py"), std::to_string(a.port), "0"});
    EXPECT_EQ(seed.exit_code, 0) << seed.err;
    EXPECT_EQ(seed.out, "welcome to server!\n");
    EXPECT_EQ(a.process->read_line(stream::out, 10s), "listening on 127.0.0.1:" + std::to_string(a.port));
    auto client = run({bin("greet-client"), "--host", "127.0.0.1", "--port", std::to_string(a.port)});
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(client.out, "welcome to server!\n");
    // The second loop may take the queued connection before the first says READY=1.
    const auto ready = manager.until(std::regex("^READY=1"));
    EXPECT_TRUE(std::regex_match(
        ready, std::regex("READY=1\nSTATUS=[01] connection\\(s\\) open, [01] accepted since the start")))
        << ready;
    a.process->send_signal(SIGTERM);
    // greet-client's connection may still be in its close (the server drains after its FIN).
    const auto stopping = manager.until(std::regex("^STOPPING=1"));
    EXPECT_TRUE(std::regex_match(
        stopping,
        std::regex("STOPPING=1\nSTATUS=stopping: [01] connection\\(s\\) open, 2 accepted since the start")))
        << stopping;
    EXPECT_EQ(a.process->wait(20s), 0) << a.process->err();
}

// -- sockets passed by the test, as a manager passes them ----------------------------------------

TEST(ListenFds, GreetServerServesThePassedSocketOnEveryLoop) {
    auto held = held_listener();
    const auto port = held.getsockname().port();
    auto s = start_greet_server({"--quiet", "--threads", "2"}, {.env = {}, .fds = {held.fileno()}});
    EXPECT_EQ(s.port, port);
    for (int i = 0; i < 20; ++i) EXPECT_EQ(greet_once(port), "welcome to server!");
    s.process->send_signal(SIGTERM);
    EXPECT_EQ(s.process->wait(20s), 0) << s.process->err();
}

// A LISTEN_PID of another process: what a child of an activated process inherits when the
// variables were left set. The descriptors are not greet-server's to take.
TEST(ListenFds, AnotherProcessesSocketsAreIgnored) {
    auto held = held_listener();
    const auto held_port = held.getsockname().port();
    auto s = start_greet_server({"--host", "127.0.0.1", "--port", "0", "--quiet"},
                                {.env = {"LISTEN_PID=" + std::to_string(::getpid()), "LISTEN_FDS=1"},
                                 .fds = {}});
    EXPECT_NE(s.port, held_port);
    EXPECT_EQ(greet_once(s.port), "welcome to server!");
    s.process->send_signal(SIGTERM);
    EXPECT_EQ(s.process->wait(20s), 0) << s.process->err();
}

/// greet-server run with these variables (LISTEN_PID its own) and descriptors, to its end.
run_result activated_run(std::vector<std::string> args, std::vector<std::string> env,
                         std::vector<int> fds) {
    args.insert(args.begin(), bin("greet-server"));
    child_process p(with_listen_pid(args), {.env = std::move(env), .fds = std::move(fds)});
    run_result r;
    r.exit_code = p.wait(20s);
    r.out = p.out();
    r.err = p.err();
    return r;
}

TEST(ListenFds, GarbageInTheVariablesIsOneError) {
    auto held = held_listener();
    auto r = activated_run({"--quiet"}, {"LISTEN_FDS=two"}, {held.fileno()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "greet-server: LISTEN_FDS=two: not a number of descriptors above 0 (socket activation)\n");
    r = activated_run({"--quiet"}, {"LISTEN_FDS=2"}, {held.fileno()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "greet-server: socket activation: fd 4 (LISTEN_FDS=2): Bad file descriptor\n");
}

TEST(ListenFds, ASocketOfTheWrongKindIsOneError) {
    sock::socket udp(sock::family::inet, sock::kind::dgram);
    udp.bind({"127.0.0.1", 0});
    const auto where = udp.getsockname().to_string();
    auto r = activated_run({"--quiet"}, {"LISTEN_FDS=1"}, {udp.fileno()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "greet-server: server: inherited fd 3 (" + where +
                         ") is a datagram socket; this server serves stream sockets\n");
    sock::socket bound(sock::family::inet, sock::kind::stream);
    bound.bind({"127.0.0.1", 0});
    r = activated_run({"--quiet"}, {"LISTEN_FDS=1"}, {bound.fileno()});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err, "greet-server: server: inherited fd 3 (" + bound.getsockname().to_string() +
                         ") is not listening\n");
}

TEST(ListenFds, UdpServesAPassedDatagramSocket) {
    sock::socket udp(sock::family::inet, sock::kind::dgram);
    udp.bind({"127.0.0.1", 0});
    const auto where = udp.getsockname();
    auto s = start_greet_server({"--udp", "--quiet"}, {.env = {}, .fds = {udp.fileno()}});
    udp.close();
    auto r = run({bin("greet-client"), "--udp", "--host", "127.0.0.1", "--port", std::to_string(where.port())});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "welcome to server!\n");
    s.process->send_signal(SIGTERM);
    EXPECT_EQ(s.process->wait(20s), 0) << s.process->err();
}

TEST(ListenFds, WhereToListenOnTheCommandLineIsAUsageError) {
    auto held = held_listener();
    for (const auto& option : std::vector<std::vector<std::string>>{
             {"--port", "8001"}, {"--host", "127.0.0.1"}, {"--reuse-port"}, {"--backlog", "5"}}) {
        auto r = activated_run(option, {"LISTEN_FDS=1"}, {held.fileno()});
        EXPECT_EQ(r.exit_code, 2);
        EXPECT_EQ(r.err, "greet-server: " + option[0] +
                             ": not with socket activation (LISTEN_FDS): the service manager's "
                             "socket unit says where to listen\n");
    }
}

TEST(ListenFds, EchoServerServesThePassedSocketToo) {
    auto held = held_listener();
    const auto where = held.getsockname();
    child_process p(with_listen_pid({bin("echo-server")}), {.env = {"LISTEN_FDS=1"}, .fds = {held.fileno()}});
    EXPECT_EQ(p.read_line(stream::out, 10s), "listening on " + where.to_string());
    auto c = sock::create_connection(where, 10s);
    c.settimeout(10.0);
    c.sendall("ping");
    EXPECT_EQ(c.recv(1024), "ping");
    c.close();  // before the stop, which would give it 5 s to finish
    p.send_signal(SIGTERM);
    EXPECT_EQ(p.wait(20s), 0) << p.err();
}

TEST(ListenFds, ChatServerServesThePassedSocketToo) {
    auto held = held_listener();
    const auto where = held.getsockname();
    child_process p(with_listen_pid({bin("chat-server")}), {.env = {"LISTEN_FDS=1"}, .fds = {held.fileno()}});
    EXPECT_EQ(p.read_line(stream::out, 10s), "listening on " + where.to_string());
    auto listener = sock::create_connection(where, 10s);
    auto speaker = sock::create_connection(where, 10s);
    // The listener joins the room on the server's own time: say it until it is heard.
    listener.settimeout(0.2);
    std::string heard;
    for (int i = 0; i < 100 && heard.empty(); ++i) {
        speaker.sendall("hello\n");
        try {
            heard = listener.recv(1024);
        } catch (const sock::timeout&) {
        }
    }
    EXPECT_EQ(heard.substr(0, 6), "hello\n");
    listener.close();
    speaker.close();
    p.send_signal(SIGTERM);
    EXPECT_EQ(p.wait(20s), 0) << p.err();
}

// -- a restart behind a held socket ----------------------------------------------------------------

// What `systemctl restart greet-server` does with greet-server.socket: the manager holds the
// listening socket; the old instance stops gracefully (it stops accepting, finishes what it
// took), the new one starts on the same socket. Clients that connect in between wait in the
// socket's queue: under load, not one greeting is lost.
TEST(Restart, ASocketHeldAcrossARestartLosesNoGreeting) {
    auto held = held_listener();
    const auto port = std::to_string(held.getsockname().port());
    notify_socket manager_a("restart-a"), manager_b("restart-b");
    auto a = start_greet_server({"--quiet", "--threads", "2"},
                                {.env = {manager_a.env()}, .fds = {held.fileno()}});
    child_process bench({bin("greet-bench"), "--port", port, "--duration", "6", "--connections",
                         "32", "--json"});
    // Once the first instance has served some of the load, restart.
    const auto served_by_a = accepted_in(manager_a.until(std::regex("[1-9]\\d* accepted")));
    a.process->send_signal(SIGTERM);
    EXPECT_EQ(a.process->wait(20s), 0) << a.process->err();
    const auto stopped = std::chrono::steady_clock::now();
    auto b = start_greet_server({"--quiet", "--threads", "2"},
                                {.env = {manager_b.env()}, .fds = {held.fileno()}});
    const auto gap = std::chrono::steady_clock::now() - stopped;
    // The second instance serves the rest of the load, those that queued first included.
    const auto served_by_b = accepted_in(manager_b.until(std::regex("[1-9]\\d* accepted")));
    ASSERT_EQ(bench.wait(60s), 0) << bench.err();
    const auto completed = json_number(bench.out(), "completed");
    EXPECT_EQ(json_number(bench.out(), "errors"), 0u) << bench.out();
    EXPECT_GT(completed, 0u);
    b.process->send_signal(SIGTERM);
    const auto b_stopping = manager_b.until(std::regex("^STOPPING=1"));
    EXPECT_EQ(b.process->wait(20s), 0) << b.process->err();
    std::cout << "restart behind a held socket: " << completed << " greetings, 0 errors; the first "
              << "instance had served " << served_by_a << " when it was stopped, the second "
              << accepted_in(b_stopping) << " (" << served_by_b << " at its first status); "
              << std::chrono::duration_cast<std::chrono::milliseconds>(gap).count()
              << " ms from the first's exit to the second's listening line\n";
}

}  // namespace
