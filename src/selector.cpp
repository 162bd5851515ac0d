#include <sock/error.hpp>
#include <sock/selector.hpp>

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <stdexcept>
#include <string>

namespace sock SOCK_API {

namespace {

bool valid_events(sock::event events) noexcept {
    const auto bits = static_cast<unsigned>(events);
    return bits != 0 && (bits & ~3u) == 0;
}

short poll_events(sock::event events) noexcept {
    short out = 0;
    if ((events & sock::event::read) != sock::event::none) out |= POLLIN;
    if ((events & sock::event::write) != sock::event::none) out |= POLLOUT;
    return out;
}

// As Python's PollSelector: anything but POLLIN (POLLOUT, POLLERR, POLLHUP, POLLNVAL) makes
// the descriptor writable, anything but POLLOUT readable; then only what was asked for.
sock::event ready_events(short revents, sock::event asked) noexcept {
    sock::event out = sock::event::none;
    if ((revents & ~POLLIN) != 0) out |= sock::event::write;
    if ((revents & ~POLLOUT) != 0) out |= sock::event::read;
    return out & asked;
}

std::string fd_text(int fd) { return "fd " + std::to_string(fd); }

[[noreturn]] void throw_bad_arguments(const char* call, int fd, sock::event events) {
    if (fd < 0) throw std::invalid_argument(std::string(call) + ": invalid file descriptor " +
                                            std::to_string(fd));
    throw std::invalid_argument(std::string(call) + " " + fd_text(fd) + ": invalid events " +
                                std::to_string(static_cast<unsigned>(events)));
}

}  // namespace

const selector_key* selector::register_(int fd, sock::event events, std::any data,
                                        std::error_code& ec) {
    if (fd < 0 || !valid_events(events)) {
        ec = std::make_error_code(std::errc::invalid_argument);
        return nullptr;
    }
    const auto [it, added] = keys_.try_emplace(fd, selector_key{fd, events, std::move(data)});
    if (!added) {
        ec = std::make_error_code(std::errc::file_exists);
        return nullptr;
    }
    ec.clear();
    return &it->second;
}

const selector_key& selector::register_(int fd, sock::event events, std::any data) {
    std::error_code ec;
    const auto* key = register_(fd, events, std::move(data), ec);
    if (ec == std::errc::invalid_argument) throw_bad_arguments("register", fd, events);
    if (ec) throw_error(ec, "register " + fd_text(fd));
    return *key;
}

const selector_key& selector::register_(const socket& s, sock::event events, std::any data) {
    return register_(s.fileno(), events, std::move(data));
}

selector_key selector::unregister(int fd, std::error_code& ec) {
    const auto it = keys_.find(fd);
    if (it == keys_.end()) {
        ec = std::make_error_code(std::errc::no_such_file_or_directory);
        return {};
    }
    ec.clear();
    selector_key key = std::move(it->second);
    keys_.erase(it);
    return key;
}

selector_key selector::unregister(int fd) {
    std::error_code ec;
    auto key = unregister(fd, ec);
    if (ec) throw_error(ec, "unregister " + fd_text(fd));
    return key;
}

selector_key selector::unregister(const socket& s) { return unregister(s.fileno()); }

const selector_key* selector::modify(int fd, sock::event events, std::any data,
                                     std::error_code& ec) {
    if (fd < 0 || !valid_events(events)) {
        ec = std::make_error_code(std::errc::invalid_argument);
        return nullptr;
    }
    const auto it = keys_.find(fd);
    if (it == keys_.end()) {
        ec = std::make_error_code(std::errc::no_such_file_or_directory);
        return nullptr;
    }
    ec.clear();
    it->second.events = events;
    it->second.data = std::move(data);
    return &it->second;
}

const selector_key& selector::modify(int fd, sock::event events, std::any data) {
    std::error_code ec;
    const auto* key = modify(fd, events, std::move(data), ec);
    if (ec == std::errc::invalid_argument) throw_bad_arguments("modify", fd, events);
    if (ec) throw_error(ec, "modify " + fd_text(fd));
    return *key;
}

const selector_key& selector::modify(const socket& s, sock::event events, std::any data) {
    return modify(s.fileno(), events, std::move(data));
}

std::vector<selector::ready_t> selector::select(timeout_t timeout, std::error_code& ec) {
    using clock = std::chrono::steady_clock;
    std::vector<ready_t> ready;
    if (timeout && timeout->count() < 0) timeout = std::chrono::nanoseconds(0);
    const auto deadline = timeout ? std::optional(clock::now() + *timeout) : std::nullopt;
    polled_.clear();
    for (const auto& [fd, key] : keys_) polled_.push_back({fd, poll_events(key.events), 0});
    for (;;) {
        ::timespec ts{};
        if (deadline) {
            const auto left = std::max(std::chrono::nanoseconds(0),
                                       std::chrono::duration_cast<std::chrono::nanoseconds>(
                                           *deadline - clock::now()));
            ts.tv_sec = static_cast<std::time_t>(left.count() / 1'000'000'000);
            ts.tv_nsec = static_cast<long>(left.count() % 1'000'000'000);
        }
        const int n = ::ppoll(polled_.data(), polled_.size(), deadline ? &ts : nullptr, nullptr);
        if (n >= 0) break;
        if (errno != EINTR) {
            ec = {errno, std::system_category()};
            return ready;
        }
        if (deadline && clock::now() >= *deadline) break;  // interrupted at the very end
        for (auto& p : polled_) p.revents = 0;
    }
    ec.clear();
    for (const auto& p : polled_) {
        if (p.revents == 0) continue;
        const auto& key = keys_.at(p.fd);
        if (const auto events = ready_events(p.revents, key.events); events != sock::event::none)
            ready.emplace_back(&key, events);
    }
    return ready;
}

std::vector<selector::ready_t> selector::select(timeout_t timeout) {
    std::error_code ec;
    auto ready = select(timeout, ec);
    if (ec) throw_error(ec, "select");
    return ready;
}

const selector_key& selector::get_key(int fd) const {
    const auto it = keys_.find(fd);
    if (it == keys_.end()) throw std::out_of_range("get_key " + fd_text(fd) + ": not registered");
    return it->second;
}

}  // namespace sock
