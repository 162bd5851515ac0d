// systemd's protocols without systemd: sockets placed at descriptor 3 on as the manager places
// them, the variables set by hand, and a datagram socket of the test's own as $NOTIFY_SOCKET.

#include "support.hpp"

#include "scoped_env.hpp"

#include <sock/systemd.hpp>

#include <climits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;
using namespace test;

/// Puts a duplicate of fd at `target` (without close-on-exec, as an exec leaves it) for one
/// scope, then puts back whatever descriptor was there before.
class placed_fd {
public:
    placed_fd(int fd, int target) : target_(target) {
        if (fd_is_open(target)) saved_ = ::fcntl(target, F_DUPFD_CLOEXEC, 100);
        if (fd >= 0) ::dup2(fd, target);
        else ::close(target);
    }
    ~placed_fd() {
        if (saved_ >= 0) {
            ::dup2(saved_, target_);
            ::close(saved_);
        } else {
            ::close(target_);  // EBADF when listen_fds' socket already closed it: fine
        }
    }
    placed_fd(const placed_fd&) = delete;
    placed_fd& operator=(const placed_fd&) = delete;

private:
    int target_;
    int saved_ = -1;
};

/// Keeps descriptors 3 to 5 taken (by /dev/null where free) while a test makes its sockets,
/// so that none lands where placed_fd will put one.
class low_fds_taken {
public:
    low_fds_taken() {
        for (int fd = 3; fd <= 5; ++fd) {
            if (fd_is_open(fd)) continue;
            const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (null != fd) {
                ::dup2(null, fd);
                ::close(null);
            }
            mine_.push_back(fd);
        }
    }
    ~low_fds_taken() {
        for (int fd : mine_) ::close(fd);
    }
    low_fds_taken(const low_fds_taken&) = delete;
    low_fds_taken& operator=(const low_fds_taken&) = delete;

private:
    std::vector<int> mine_;
};

/// The activation variables, all three, for one scope.
struct activation {
    scoped_env pid, fds, names;
    activation(std::optional<std::string> p, std::optional<std::string> n,
               std::optional<std::string> names_ = std::nullopt)
        : pid("LISTEN_PID", std::move(p)), fds("LISTEN_FDS", std::move(n)),
          names("LISTEN_FDNAMES", std::move(names_)) {}
};

std::string self() { return std::to_string(::getpid()); }

bool activation_unset() {
    return !std::getenv("LISTEN_PID") && !std::getenv("LISTEN_FDS") && !std::getenv("LISTEN_FDNAMES");
}

/// What listen_fds throws as std::invalid_argument, or "<none>".
std::string garbage_error() {
    try {
        sock::listen_fds();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "<none>";
}

TEST(ListenFds, NoneWithoutTheVariables) {
    activation env(std::nullopt, std::nullopt);
    EXPECT_TRUE(sock::listen_fds().empty());
}

TEST(ListenFds, TakesTheSocketsWithTheirNamesCloseOnExec) {
    low_fds_taken low;
    auto web = listener_v4();
    sock::socket control(sock::family::local, sock::kind::dgram);
    control.bind(sock::address::unix_path(abstract_name("control")));
    placed_fd a(web.fileno(), 3), b(control.fileno(), 4);
    ASSERT_FALSE(fd_is_cloexec(3));
    activation env(self(), "2", "web:control");

    auto got = sock::listen_fds();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].name, "web");
    EXPECT_EQ(got[0].sock.fileno(), 3);
    EXPECT_EQ(got[0].sock.family(), sock::family::inet);
    EXPECT_EQ(got[0].sock.type(), sock::kind::stream);
    EXPECT_EQ(got[0].sock.getsockname(), web.getsockname());
    EXPECT_EQ(got[1].name, "control");
    EXPECT_EQ(got[1].sock.type(), sock::kind::dgram);
    EXPECT_EQ(got[1].sock.getsockname(), control.getsockname());
    EXPECT_TRUE(fd_is_cloexec(3));
    EXPECT_TRUE(fd_is_cloexec(4));
    EXPECT_TRUE(activation_unset()) << "children would take the sockets for theirs";
    // The sockets work: a client reaches the listener through the adopted descriptor.
    auto client = sock::create_connection(web.getsockname(), 10s);
    got[0].sock.settimeout(10.0);
    EXPECT_NO_THROW(got[0].sock.accept());
}

TEST(ListenFds, NamesAreUnknownWithoutListenFdnames) {
    low_fds_taken low;
    auto web = listener_v4();
    placed_fd a(web.fileno(), 3);
    activation env(self(), "1");
    auto got = sock::listen_fds();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].name, "unknown");
}

// A process started by an activated one inherits the variables (when they were not removed):
// LISTEN_PID is its parent's, and the descriptors are not its own to take.
TEST(ListenFds, AnotherProcessIdIsIgnoredAndTheVariablesRemoved) {
    low_fds_taken low;
    auto web = listener_v4();
    placed_fd a(web.fileno(), 3);
    activation env(std::to_string(::getppid()), "1", "web");
    EXPECT_TRUE(sock::listen_fds().empty());
    EXPECT_TRUE(activation_unset());
    EXPECT_TRUE(fd_is_open(3)) << "a descriptor that is not ours was closed";
    EXPECT_FALSE(fd_is_cloexec(3));
}

TEST(ListenFds, GarbageIsOneClearError) {
    low_fds_taken low;
    auto web = listener_v4();
    placed_fd a(web.fileno(), 3);
    const std::vector<std::pair<std::string, std::string>> pids{
        {"abc", "LISTEN_PID=abc: not a process id (socket activation)"},
        {"", "LISTEN_PID=: not a process id (socket activation)"},
        {"-1", "LISTEN_PID=-1: not a process id (socket activation)"},
        {self() + " ", "LISTEN_PID=" + self() + " : not a process id (socket activation)"},
        {"0", "LISTEN_PID=0: not a process id (socket activation)"},
    };
    for (const auto& [value, message] : pids) {
        activation env(value, "1");
        EXPECT_EQ(garbage_error(), message);
        EXPECT_TRUE(activation_unset());
    }
    const std::string why = ": not a number of descriptors above 0 (socket activation)";
    for (const std::string value : {"0", "x", "-1", "1.0", "99999999999", "2147483647"}) {
        activation env(self(), value);
        EXPECT_EQ(garbage_error(), "LISTEN_FDS=" + value + why);
    }
    {
        activation env(self(), "1", "web:control");
        EXPECT_EQ(garbage_error(), "LISTEN_FDNAMES=web:control: 2 name(s) for LISTEN_FDS=1");
        EXPECT_TRUE(activation_unset());
    }
}

TEST(ListenFds, AClosedDescriptorIsAnErrorThatClosesNothing) {
    low_fds_taken low;
    auto web = listener_v4();
    placed_fd a(web.fileno(), 3), b(-1, 4);
    activation env(self(), "2");
    try {
        sock::listen_fds();
        ADD_FAILURE() << "no error";
    } catch (const sock::error& e) {
        EXPECT_STREQ(e.what(), "socket activation: fd 4 (LISTEN_FDS=2): Bad file descriptor");
    }
    EXPECT_TRUE(fd_is_open(3));
}

TEST(ListenFds, ADescriptorThatIsNoSocketIsAnError) {
    low_fds_taken low;
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    placed_fd a(p[0], 3);
    ::close(p[0]);
    ::close(p[1]);
    activation env(self(), "1");
    try {
        sock::listen_fds();
        ADD_FAILURE() << "no error";
    } catch (const sock::error& e) {
        EXPECT_STREQ(e.what(), "socket activation: fd 3 (LISTEN_FDS=1): Socket operation on non-socket");
    }
}

// -- notify ----------------------------------------------------------------------------------

/// A datagram socket standing in for the service manager's notification socket.
struct manager {
    sock::socket s{sock::family::local, sock::kind::dgram};
    explicit manager(const std::string& where) {
        s.bind(sock::address::unix_path(where));
        s.settimeout(10.0);
    }
    std::string next() { return s.recv(4096); }
};

TEST(Notify, DoesNothingWithoutNotifySocket) {
    scoped_env env("NOTIFY_SOCKET", std::nullopt);
    EXPECT_FALSE(sock::notify("READY=1"));
    std::error_code ec;
    EXPECT_FALSE(sock::notify("READY=1", ec));
    EXPECT_FALSE(ec);
}

TEST(Notify, SendsOneDatagramToAPath) {
    test::temp_dir dir;
    manager m(dir.file("notify"));
    scoped_env env("NOTIFY_SOCKET", dir.file("notify"));
    EXPECT_TRUE(sock::notify("READY=1"));
    EXPECT_TRUE(sock::notify("STATUS=3 connections\nWATCHDOG=1"));
    EXPECT_EQ(m.next(), "READY=1");
    EXPECT_EQ(m.next(), "STATUS=3 connections\nWATCHDOG=1");
}

TEST(Notify, SendsToAnAbstractName) {
    const auto name = abstract_name("notify");
    manager m(name);
    scoped_env env("NOTIFY_SOCKET", name);
    std::error_code ec;
    EXPECT_TRUE(sock::notify("STOPPING=1", ec));
    EXPECT_FALSE(ec);
    EXPECT_EQ(m.next(), "STOPPING=1");
}

TEST(Notify, FailuresNameTheSocket) {
    test::temp_dir dir;
    const auto missing = dir.file("gone");
    scoped_env env("NOTIFY_SOCKET", missing);
    try {
        sock::notify("READY=1");
        ADD_FAILURE() << "no error";
    } catch (const sock::error& e) {
        EXPECT_EQ(e.what(), "notify " + missing + ": No such file or directory");
    }
    std::error_code ec;
    EXPECT_FALSE(sock::notify("READY=1", ec));
    EXPECT_EQ(ec, std::errc::no_such_file_or_directory);
}

TEST(Notify, AValueThatIsNoUnixAddressIsAnError) {
    for (const std::string value : {"", "relative/path", "@", "vsock:2:1234"}) {
        scoped_env env("NOTIFY_SOCKET", value);
        try {
            sock::notify("READY=1");
            ADD_FAILURE() << "no error for " << value;
        } catch (const std::invalid_argument& e) {
            EXPECT_EQ(e.what(), "NOTIFY_SOCKET=" + value +
                                    ": not a Unix socket path ('/...') or abstract name ('@...')");
        }
        std::error_code ec;
        EXPECT_FALSE(sock::notify("READY=1", ec));
        EXPECT_EQ(ec, std::errc::invalid_argument);
    }
}

// -- watchdog --------------------------------------------------------------------------------

TEST(Watchdog, IntervalFromWatchdogUsec) {
    scoped_env pid("WATCHDOG_PID", std::nullopt);
    {
        scoped_env usec("WATCHDOG_USEC", std::nullopt);
        EXPECT_EQ(sock::watchdog_interval(), std::nullopt);
    }
    scoped_env usec("WATCHDOG_USEC", "2500000");
    EXPECT_EQ(sock::watchdog_interval(), std::chrono::microseconds(2'500'000));
    scoped_env ours("WATCHDOG_PID", self());
    EXPECT_EQ(sock::watchdog_interval(), std::chrono::microseconds(2'500'000));
}

TEST(Watchdog, AnotherProcessesWatchdogIsNotOurs) {
    scoped_env usec("WATCHDOG_USEC", "2500000");
    scoped_env pid("WATCHDOG_PID", std::to_string(::getppid()));
    EXPECT_EQ(sock::watchdog_interval(), std::nullopt);
}

TEST(Watchdog, GarbageIsOneClearError) {
    scoped_env pid("WATCHDOG_PID", std::nullopt);
    for (const std::string value : {"0", "abc", "-5", "10s"}) {
        scoped_env usec("WATCHDOG_USEC", value);
        try {
            sock::watchdog_interval();
            ADD_FAILURE() << "no error for " << value;
        } catch (const std::invalid_argument& e) {
            EXPECT_EQ(e.what(), "WATCHDOG_USEC=" + value + ": not a number of microseconds above 0 (watchdog)");
        }
    }
}

}  // namespace
