// libFuzzer: the greeting protocol (apps/greet/greeting.hpp) on any message: exactly "1" is
// welcomed, everything else is sent away, and the reply is always one of the two.

#include "greet/greeting.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view message(reinterpret_cast<const char*>(data), size);
    const auto reply = greet::reply_to(message);
    const bool welcomed = reply == greet::welcome;
    if (welcomed != (message == greet::password)) std::abort();
    if (!welcomed && reply != greet::go_out) std::abort();
    return 0;
}
