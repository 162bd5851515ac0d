#pragma once

// A program run by a test: stdout and stderr piped back, every wait bounded, killed on destruct.

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace greet_test {

enum class stream { out, err };

/// What a child gets besides its arguments, as a service manager gives it.
struct spawn_options {
    /// "NAME=value" entries added to (or replacing those of) this process's environment.
    std::vector<std::string> env;
    /// Descriptors of this process the child gets at 3, 4, ... (socket activation's places).
    std::vector<int> fds;
};

class child_process {
public:
    /// Starts argv (argv[0] is searched in PATH when it has no '/'); stdin is /dev/null,
    /// SIGINT, SIGTERM and SIGPIPE have their default actions. Throws std::system_error.
    explicit child_process(const std::vector<std::string>& argv, const spawn_options& options = {});
    /// Kills the process (SIGKILL) and reaps it, if it is still running.
    ~child_process();
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    pid_t pid() const noexcept { return pid_; }

    /// The next whole line (without '\n') of one stream, waiting at most `limit` for it;
    /// nullopt when the stream ends or the time is up.
    std::optional<std::string> read_line(stream which, std::chrono::milliseconds limit);

    void send_signal(int sig);

    /// Closes our end of its stdout pipe, as `program | head -1` does once head has its line:
    /// the program's next write to stdout fails with EPIPE (or raises SIGPIPE).
    void close_stdout();

    /// Waits at most `limit` for the process to exit, collecting all its output. Returns the
    /// exit code, or 128 + the signal number if a signal killed it; nullopt if still running.
    std::optional<int> wait(std::chrono::milliseconds limit);

    /// Everything read so far from each stream, including lines read_line returned.
    const std::string& out() const noexcept { return pipes_[0].text; }
    const std::string& err() const noexcept { return pipes_[1].text; }

private:
    struct pipe_end {
        int fd = -1;
        std::string text;
        std::size_t consumed = 0;  // read_line's position in text
    };
    using clock = std::chrono::steady_clock;

    /// Reads what is ready on the open pipes, waiting until `deadline` for something.
    void pump(clock::time_point deadline);

    pid_t pid_ = -1;
    bool reaped_ = false;
    int status_ = 0;
    pipe_end pipes_[2];
};

/// Runs argv to completion (at most `limit`) and returns what it did.
struct run_result {
    std::optional<int> exit_code;  // nullopt: still running at the limit, then killed
    std::string out;
    std::string err;
};
run_result run(const std::vector<std::string>& argv,
               std::chrono::milliseconds limit = std::chrono::seconds(20));

}  // namespace greet_test
