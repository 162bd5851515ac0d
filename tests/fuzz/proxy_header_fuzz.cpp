// libFuzzer: the PROXY protocol parser on any bytes. Beyond not crashing (ASan, UBSan), it
// checks what a reader relies on: a decision never waits past the bounds, a complete header
// fits the input and is decided by its own bytes alone, whatever payload follows.

#include <sock/proxy_protocol.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    const auto r = sock::parse_proxy_header(bytes);
    switch (r.status) {
    case sock::proxy_status::need_more:
        // Bounded: no valid beginning is longer than the longest header.
        check(size < sock::proxy_v2_max);
        break;
    case sock::proxy_status::invalid:
        check(!r.reason.empty());
        break;
    case sock::proxy_status::complete: {
        const auto n = r.header.length;
        check(n > 0 && n <= size);
        check(n <= (r.header.version == 1 ? sock::proxy_v1_max : sock::proxy_v2_max));
        // The header alone gives the same answer; one byte less of it needs more.
        const auto alone = sock::parse_proxy_header(bytes.substr(0, n));
        check(alone.status == sock::proxy_status::complete && alone.header.length == n);
        check(alone.header.source == r.header.source);
        check(sock::parse_proxy_header(bytes.substr(0, n - 1)).status ==
              sock::proxy_status::need_more);
        // The TLVs lie within the header.
        if (!r.header.tlvs.empty())
            check(r.header.tlvs.data() >= bytes.data() &&
                  r.header.tlvs.data() + r.header.tlvs.size() <= bytes.data() + n);
        if (r.header.family != sock::family::unspec) check(!r.header.source.empty());
        break;
    }
    }
    return 0;
}
