#include "greet/stop_signal.hpp"

#include <csignal>
#include <system_error>

#include <cerrno>

namespace greet {

namespace {

volatile std::sig_atomic_t stop_flag = 0;

extern "C" void on_stop_signal(int) { stop_flag = 1; }

}  // namespace

void install_stop_handlers() {
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;
    for (int sig : {SIGINT, SIGTERM}) {
        if (::sigaction(sig, &action, nullptr) != 0)
            throw std::system_error(errno, std::generic_category(), "sigaction");
    }
}

bool stop_requested() noexcept { return stop_flag != 0; }

}  // namespace greet
