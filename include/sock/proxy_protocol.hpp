#pragma once

// The PROXY protocol (HAProxy's doc/proxy-protocol.txt, versions 1 and 2): the header a
// front door (HAProxy `send-proxy`, nginx `proxy_protocol on`) puts before a connection's
// first byte to say who the client is. Pure code, bytes in and a result out, so that it is
// tested and fuzzed without a network; sock::server reads it off a socket (server_config's
// proxy_protocol).

#include <sock/address.hpp>
#include <sock/export.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace sock SOCK_API {

/// Version 1 lines are at most this long, CRLF included (the specification's worst case).
inline constexpr std::size_t proxy_v1_max = 107;
/// The longest version 2 header accepted, its 16 fixed bytes included: room for Unix
/// addresses (216 bytes) and the TLVs front doors send (SSL details, unique IDs), while a
/// length field of up to 65535 never makes a reader hold more than this.
inline constexpr std::size_t proxy_v2_max = 1024;

/// What the front door says the connection is.
enum class proxy_command : std::uint8_t {
    local,  ///< v2 LOCAL: the front door's own connection (a health check); use the real ends
    proxy,  ///< relayed for a client: the header's addresses are the client's and the target's
};

/// A complete, valid header.
struct proxy_header {
    int version = 0;                              ///< 1 or 2
    proxy_command command = proxy_command::proxy;
    /// unspec when the header gives no addresses (v1 UNKNOWN, v2 LOCAL or AF_UNSPEC): the
    /// connection's own ends stand. Otherwise inet, inet6 or unix (v2 only).
    sock::family family = sock::family::unspec;
    sock::kind type = sock::kind::stream;         ///< v2 may say dgram (UDP, Unix datagrams)
    address source;                               ///< the client, when family is not unspec
    address destination;                          ///< what the client connected to
    /// v2's type-length-value records after the addresses, as sent (a view into the input);
    /// already checked to fit, and the CRC32C one, if any, to match.
    std::string_view tlvs;
    std::size_t length = 0;                       ///< bytes the header takes; what follows is payload

    /// The value of the first TLV of that type (PP2_TYPE_ALPN 0x01, AUTHORITY 0x02, ...).
    std::optional<std::string_view> tlv(std::uint8_t tlv_type) const noexcept;
};

/// need_more: the bytes so far are a valid beginning; call again with more of them.
enum class proxy_status : std::uint8_t { need_more, complete, invalid };

struct proxy_result {
    proxy_status status = proxy_status::need_more;
    proxy_header header;      ///< when complete
    /// When invalid: why, in a few words ("v1: no CRLF within 107 bytes"); static storage.
    std::string_view reason;
};

/// Parses the header at the start of bytes (everything received so far, payload included or
/// not). Strict: anything the specification does not allow is invalid, and the decision is
/// made on the fewest bytes that show it, so a reader never waits for bytes of a header
/// already known to be wrong. Never reads past bytes, never allocates more than the
/// addresses' text.
proxy_result parse_proxy_header(std::string_view bytes);

/// CRC32C (Castagnoli, as iSCSI and SCTP: RFC 4960 appendix B) of data, continuing from crc
/// (0 to start); v2's PP2_TYPE_CRC32C TLV holds this for the whole header.
std::uint32_t crc32c(std::string_view data, std::uint32_t crc = 0) noexcept;

}  // namespace sock
