#include "greet/descriptor_limit.hpp"

#include <sys/resource.h>

namespace greet {

std::size_t raise_descriptor_limit() noexcept {
    ::rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 1024;
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &lim);
        ::getrlimit(RLIMIT_NOFILE, &lim);
    }
    return lim.rlim_cur == RLIM_INFINITY ? std::size_t{1} << 20 : static_cast<std::size_t>(lim.rlim_cur);
}

std::size_t connection_budget(std::size_t descriptors) noexcept {
    return descriptors > 256 ? descriptors - 128 : descriptors / 2;
}

}  // namespace greet
