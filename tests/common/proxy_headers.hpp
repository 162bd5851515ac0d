#pragma once

// PROXY protocol headers as front doors write them (HAProxy's doc/proxy-protocol.txt), built
// by hand byte for byte, so that the parser is checked against the specification and not
// against itself. For the parser's tests, the server's, and the fuzzers' seeds.

#include <sock/proxy_protocol.hpp>

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace test {

/// The 12-byte v2 signature.
inline const std::string v2_signature("\r\n\r\n\0\r\nQUIT\n", 12);

inline std::string be16(std::size_t n) {
    return {static_cast<char>((n >> 8) & 0xff), static_cast<char>(n & 0xff)};
}

/// One v2 TLV: type, 16-bit length, value.
inline std::string tlv(std::uint8_t type, std::string_view value) {
    return std::string(1, static_cast<char>(type)) + be16(value.size()) + std::string(value);
}

/// A v2 header: ver_cmd byte (0x21 PROXY, 0x20 LOCAL), family byte, then body as given.
inline std::string v2(std::uint8_t ver_cmd, std::uint8_t fam, std::string_view body) {
    return v2_signature + std::string(1, static_cast<char>(ver_cmd)) +
           std::string(1, static_cast<char>(fam)) + be16(body.size()) + std::string(body);
}

/// The 4 or 16 bytes of a numeric address.
inline std::string packed(const char* text) {
    unsigned char buf[16] = {};
    if (::inet_pton(AF_INET, text, buf) == 1) return std::string(reinterpret_cast<char*>(buf), 4);
    ::inet_pton(AF_INET6, text, buf);
    return std::string(reinterpret_cast<char*>(buf), 16);
}

/// A v2 PROXY header for TCP over IPv4 (fam 0x11) or IPv6 (0x21), with TLVs after the addresses.
inline std::string v2_tcp(const char* src, const char* dst, std::uint16_t sport,
                          std::uint16_t dport, std::string_view tlvs = {}) {
    const std::string s = packed(src), d = packed(dst);
    const std::uint8_t fam = s.size() == 4 ? 0x11 : 0x21;
    return v2(0x21, fam, s + d + be16(sport) + be16(dport) + std::string(tlvs));
}

/// A v2 LOCAL header with no addresses, as HAProxy's health checks send.
inline std::string v2_local() { return v2(0x20, 0x00, ""); }

/// Fills in the CRC32C TLV of header (which must hold one, value zeroed, as the last 4 bytes).
inline std::string with_crc(std::string header) {
    const std::uint32_t crc = sock::crc32c(header);
    for (int i = 0; i < 4; ++i)
        header[header.size() - 4 + static_cast<std::size_t>(i)] =
            static_cast<char>((crc >> (24 - 8 * i)) & 0xff);
    return header;
}

/// A v2 TCP header carrying a valid CRC32C TLV.
inline std::string v2_tcp_crc(const char* src, const char* dst, std::uint16_t sport,
                              std::uint16_t dport) {
    return with_crc(v2_tcp(src, dst, sport, dport, tlv(0x03, std::string(4, '\0'))));
}

}  // namespace test
