#include "wait.hpp"

#include <sock/error.hpp>

#include <poll.h>

#include <cerrno>

namespace sock::detail {

std::error_code wait_ready(int fd, short events, deadline_t deadline) noexcept {
    for (;;) {
        ::pollfd p{fd, events, 0};
        ::timespec ts{};
        const ::timespec* tsp = nullptr;
        if (deadline) {
            const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
                *deadline - clock::now());
            if (left.count() <= 0) return timeout_error();
            ts.tv_sec = static_cast<time_t>(left.count() / 1'000'000'000);
            ts.tv_nsec = static_cast<long>(left.count() % 1'000'000'000);
            tsp = &ts;
        }
        const int rc = ::ppoll(&p, 1, tsp, nullptr);
        if (rc > 0) return {};
        if (rc == 0) return timeout_error();
        if (errno != EINTR) return {errno, std::system_category()};
    }
}

std::error_code wait_any(std::span<::pollfd> fds, deadline_t deadline) noexcept {
    for (;;) {
        ::timespec ts{};
        const ::timespec* tsp = nullptr;
        if (deadline) {
            const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
                *deadline - clock::now());
            if (left.count() > 0) {
                ts.tv_sec = static_cast<time_t>(left.count() / 1'000'000'000);
                ts.tv_nsec = static_cast<long>(left.count() % 1'000'000'000);
            }
            tsp = &ts;
        }
        const int rc = ::ppoll(fds.data(), fds.size(), tsp, nullptr);
        if (rc > 0) return {};
        if (rc == 0) return timeout_error();
        if (errno != EINTR) return {errno, std::system_category()};
    }
}

}  // namespace sock::detail
