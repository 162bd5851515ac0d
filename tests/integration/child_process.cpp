#include "child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <thread>
#include <utility>

extern char** environ;

namespace greet_test {

namespace {

[[noreturn]] void fail(int err, const char* what) {
    throw std::system_error(err, std::generic_category(), what);
}

int ms_until(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

/// posix_spawn's resources, released on every path.
struct spawn_setup {
    posix_spawn_file_actions_t actions{};
    posix_spawnattr_t attr{};
    spawn_setup() {
        posix_spawn_file_actions_init(&actions);
        posix_spawnattr_init(&attr);
    }
    ~spawn_setup() {
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
        for (int fd : moved) ::close(fd);
    }
    spawn_setup(const spawn_setup&) = delete;
    spawn_setup& operator=(const spawn_setup&) = delete;
    std::vector<int> moved;  // passed descriptors, copied above the places they go to
};

/// This process's environment with `extra` added, an entry of the same name replaced.
std::vector<std::string> environment_with(const std::vector<std::string>& extra) {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string entry = *e;
        const std::string name = entry.substr(0, entry.find('=') + 1);
        bool replaced = false;
        for (const auto& x : extra) replaced = replaced || x.rfind(name, 0) == 0;
        if (!replaced) env.push_back(entry);
    }
    env.insert(env.end(), extra.begin(), extra.end());
    return env;
}

}  // namespace

child_process::child_process(const std::vector<std::string>& argv, const spawn_options& options) {
    int fds[2][2] = {{-1, -1}, {-1, -1}};
    for (auto& p : fds) {
        if (::pipe2(p, O_CLOEXEC) != 0) fail(errno, "pipe2");
    }
    spawn_setup setup;
    posix_spawn_file_actions_addopen(&setup.actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&setup.actions, fds[0][1], 1);
    posix_spawn_file_actions_adddup2(&setup.actions, fds[1][1], 2);
    // Copies above every target first, so that placing one never overwrites another.
    for (std::size_t i = 0; i < options.fds.size(); ++i) {
        const int high = ::fcntl(options.fds[i], F_DUPFD_CLOEXEC, 100);
        if (high < 0) fail(errno, "fcntl F_DUPFD_CLOEXEC");
        setup.moved.push_back(high);
        posix_spawn_file_actions_adddup2(&setup.actions, high, 3 + static_cast<int>(i));
    }
    // The test runner may ignore or block signals; the child must start with the defaults.
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (int sig : {SIGINT, SIGTERM, SIGPIPE}) sigaddset(&defaults, sig);
    posix_spawnattr_setsigmask(&setup.attr, &none);
    posix_spawnattr_setsigdefault(&setup.attr, &defaults);
    posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    char** envp = environ;
    std::vector<std::string> env;
    std::vector<char*> env_pointers;
    if (!options.env.empty()) {
        env = environment_with(options.env);
        for (auto& e : env) env_pointers.push_back(e.data());
        env_pointers.push_back(nullptr);
        envp = env_pointers.data();
    }
    const int rc = ::posix_spawnp(&pid_, args[0], &setup.actions, &setup.attr, args.data(), envp);
    ::close(fds[0][1]);
    ::close(fds[1][1]);
    pipes_[0].fd = fds[0][0];
    pipes_[1].fd = fds[1][0];
    if (rc != 0) {
        pid_ = -1;
        reaped_ = true;
        ::close(pipes_[0].fd);
        ::close(pipes_[1].fd);
        fail(rc, ("posix_spawnp " + argv.at(0)).c_str());
    }
}

child_process::~child_process() {
    if (!reaped_) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status_, 0);
    }
    for (auto& p : pipes_) {
        if (p.fd >= 0) ::close(p.fd);
    }
}

void child_process::pump(clock::time_point deadline) {
    pollfd pfds[2];
    nfds_t n = 0;
    pipe_end* ends[2];
    for (auto& p : pipes_) {
        if (p.fd < 0) continue;
        pfds[n] = pollfd{p.fd, POLLIN, 0};
        ends[n++] = &p;
    }
    if (n == 0) return;
    const int ready = ::poll(pfds, n, ms_until(deadline));
    if (ready < 0 && errno != EINTR) fail(errno, "poll");
    for (nfds_t i = 0; ready > 0 && i < n; ++i) {
        if (pfds[i].revents == 0) continue;
        char buf[4096];
        const ssize_t got = ::read(ends[i]->fd, buf, sizeof buf);
        if (got > 0) {
            ends[i]->text.append(buf, static_cast<std::size_t>(got));
        } else if (got == 0 || errno != EINTR) {
            ::close(ends[i]->fd);  // end of stream (or a broken pipe: nothing more will come)
            ends[i]->fd = -1;
        }
    }
}

std::optional<std::string> child_process::read_line(stream which,
                                                    std::chrono::milliseconds limit) {
    pipe_end& p = pipes_[which == stream::out ? 0 : 1];
    const auto deadline = clock::now() + limit;
    while (true) {
        const auto newline = p.text.find('\n', p.consumed);
        if (newline != std::string::npos) {
            std::string line = p.text.substr(p.consumed, newline - p.consumed);
            p.consumed = newline + 1;
            return line;
        }
        if (p.fd < 0 || clock::now() >= deadline) return std::nullopt;
        pump(deadline);
    }
}

void child_process::send_signal(int sig) {
    if (!reaped_ && ::kill(pid_, sig) != 0) fail(errno, "kill");
}

void child_process::close_stdout() {
    if (pipes_[0].fd >= 0) ::close(std::exchange(pipes_[0].fd, -1));
}

std::optional<int> child_process::wait(std::chrono::milliseconds limit) {
    const auto deadline = clock::now() + limit;
    // Output first: a child blocked on a full pipe would never exit.
    while ((pipes_[0].fd >= 0 || pipes_[1].fd >= 0) && clock::now() < deadline) pump(deadline);
    while (!reaped_) {
        const pid_t r = ::waitpid(pid_, &status_, WNOHANG);
        if (r == pid_) {
            reaped_ = true;
        } else if (r < 0 && errno != EINTR) {
            fail(errno, "waitpid");
        } else if (clock::now() >= deadline) {
            return std::nullopt;
        } else {
            // Its pipes are closed, so it is exiting; no portable wait has a timeout.
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
    if (WIFEXITED(status_)) return WEXITSTATUS(status_);
    return 128 + WTERMSIG(status_);
}

run_result run(const std::vector<std::string>& argv, std::chrono::milliseconds limit) {
    child_process child(argv);
    run_result result;
    result.exit_code = child.wait(limit);
    result.out = child.out();
    result.err = child.err();
    return result;
}

}  // namespace greet_test
