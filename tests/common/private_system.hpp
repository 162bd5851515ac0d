#pragma once

// Runs a test body in a forked child that sees its own /etc files (hosts, resolv.conf,
// nsswitch.conf...) and, if asked, its own network namespace, where the test owns every port
// (a DNS server on 127.0.0.1:53 included). Root only; nothing changes outside the child.

#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <map>
#include <string>

namespace test {

/// Exit status of with_private_system when the child cannot get its private files or network.
inline constexpr int private_system_unsupported = 77;

/// Brings the loopback interface of a fresh network namespace up (it starts down).
inline bool loopback_up() {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    ::ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    bool ok = ::ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
    ok = ok && ::ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
    ::close(fd);
    return ok;
}

/// Runs body in a forked child where each of `files` (path -> content, e.g. "/etc/hosts")
/// is replaced through a bind mount in a private mount namespace, and with own_network in a
/// network namespace of its own with loopback up. gtest assertions in body print as usual;
/// returns 0 when they all passed, 1 otherwise, or private_system_unsupported.
template <class Fn>
int with_private_system(const std::map<std::string, std::string>& files, bool own_network,
                        Fn body) {
    temp_dir dir;
    std::map<std::string, std::string> sources;
    int n = 0;
    for (const auto& [target, content] : files) {
        const std::string source = dir.file("file" + std::to_string(n++));
        std::ofstream(source) << content;
        sources[target] = source;
    }
    std::fflush(stdout);
    const pid_t pid = ::fork();
    if (pid < 0) return private_system_unsupported;
    if (pid == 0) {
        if (::unshare(CLONE_NEWNS | (own_network ? CLONE_NEWNET : 0)) != 0 ||
            ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
            ::_exit(private_system_unsupported);
        for (const auto& [target, source] : sources)
            if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0)
                ::_exit(private_system_unsupported);
        if (own_network && !loopback_up()) ::_exit(private_system_unsupported);
        try {
            body();
        } catch (const std::exception& e) {
            ADD_FAILURE() << "unexpected exception: " << e.what();
        }
        std::fflush(stdout);
        ::_exit(::testing::Test::HasFailure() ? 1 : 0);
    }
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return 1;
    return WEXITSTATUS(status);
}

}  // namespace test

/// Runs the body (a callable) in a private system (see with_private_system); skips when this
/// is not root or the kernel refuses namespaces.
#define RUN_IN_PRIVATE_SYSTEM(files, own_network, ...)                                      \
    do {                                                                                    \
        if (::geteuid() != 0) GTEST_SKIP() << "needs root for private /etc files";          \
        const int status_ = ::test::with_private_system(files, own_network, __VA_ARGS__);   \
        if (status_ == ::test::private_system_unsupported) GTEST_SKIP() << "no namespaces"; \
        EXPECT_EQ(status_, 0) << "see the child's failures above";                          \
    } while (0)
