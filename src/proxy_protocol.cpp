#include <sock/proxy_protocol.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <type_traits>
#include <utility>

namespace sock SOCK_API {

namespace {

constexpr std::string_view v1_prefix = "PROXY ";
constexpr std::string_view v2_signature{"\r\n\r\n\0\r\nQUIT\n", 12};
constexpr std::size_t v2_fixed = 16;
constexpr std::uint8_t tlv_crc32c = 0x03;
// v2 address blocks: two addresses and, for IP, two ports.
constexpr std::size_t v2_inet = 2 * 4 + 2 * 2;
constexpr std::size_t v2_inet6 = 2 * 16 + 2 * 2;
constexpr std::size_t v2_unix = 2 * 108;

// The reflected Castagnoli polynomial, one table entry per byte value, built at compile time.
constexpr std::array<std::uint32_t, 256> crc32c_table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c & 1) != 0 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        t[i] = c;
    }
    return t;
}();

proxy_result invalid(std::string_view why) {
    proxy_result r;
    r.status = proxy_status::invalid;
    r.reason = why;
    return r;
}

std::uint16_t be16(const char* p) noexcept {
    return static_cast<std::uint16_t>((static_cast<unsigned char>(p[0]) << 8) |
                                      static_cast<unsigned char>(p[1]));
}

// Whether bytes could still become `whole` (it is a prefix of it, or whole is a prefix of it).
bool starts_like(std::string_view bytes, std::string_view whole) noexcept {
    const auto n = std::min(bytes.size(), whole.size());
    return bytes.substr(0, n) == whole.substr(0, n);
}

// -- version 1 --------------------------------------------------------------------------------

// A port as the specification writes it: 0 to 65535 in decimal, no leading zero.
bool v1_port(std::string_view text, std::uint16_t& out) noexcept {
    if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0')) return false;
    unsigned value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return false;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > 65535) return false;
    out = static_cast<std::uint16_t>(value);
    return true;
}

// An address of the family the line names, in canonical text (inet_pton refuses IPv4 with
// leading zeros or fewer than four parts); kept in native form for from_native.
bool v1_address(std::string_view text, int af, std::uint16_t port, address& out) {
    char buf[INET6_ADDRSTRLEN + 1] = {};
    if (text.empty() || text.size() >= sizeof buf) return false;
    std::memcpy(buf, text.data(), text.size());
    ::sockaddr_storage ss{};
    ::socklen_t len = 0;
    if (af == AF_INET) {
        auto& in = reinterpret_cast<::sockaddr_in&>(ss);
        in.sin_family = AF_INET;
        in.sin_port = htons(port);
        if (::inet_pton(AF_INET, buf, &in.sin_addr) != 1) return false;
        len = sizeof in;
    } else {
        // IPv6 is hex digits and colons; inet_pton would also take an IPv4 tail.
        if (text.find_first_not_of("0123456789abcdefABCDEF:") != std::string_view::npos) return false;
        auto& in6 = reinterpret_cast<::sockaddr_in6&>(ss);
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(port);
        if (::inet_pton(AF_INET6, buf, &in6.sin6_addr) != 1) return false;
        len = sizeof in6;
    }
    out = address::from_native(reinterpret_cast<const ::sockaddr*>(&ss), len);
    return true;
}

// Splits off the field before the next single space; false if there is none.
bool next_field(std::string_view& rest, std::string_view& field) noexcept {
    const auto sp = rest.find(' ');
    if (sp == std::string_view::npos || sp == 0) return false;
    field = rest.substr(0, sp);
    rest.remove_prefix(sp + 1);
    return true;
}

proxy_result parse_v1(std::string_view bytes) {
    // The line ends at the first CR, which must be followed by LF; an LF alone anywhere, or
    // the CRLF beyond 107 bytes, is wrong, and is said so as soon as it is seen.
    const auto window = bytes.substr(0, proxy_v1_max);
    const auto cr = window.find('\r');
    const auto lf = window.find('\n');
    if (lf != std::string_view::npos && (cr == std::string_view::npos || lf < cr + 1))
        return invalid("v1: LF without CR");
    if (cr == std::string_view::npos) {
        if (bytes.size() >= proxy_v1_max) return invalid("v1: no CRLF within 107 bytes");
        return {};
    }
    if (cr + 2 > proxy_v1_max) return invalid("v1: no CRLF within 107 bytes");
    if (cr + 1 == bytes.size()) return {};
    if (bytes[cr + 1] != '\n') return invalid("v1: CR without LF");
    const auto line = bytes.substr(v1_prefix.size(), cr - v1_prefix.size());

    proxy_result r;
    r.status = proxy_status::complete;
    auto& h = r.header;
    h.version = 1;
    h.length = cr + 2;
    std::string_view rest = line, proto;
    if (!next_field(rest, proto)) {
        proto = std::exchange(rest, std::string_view());
        if (proto == "UNKNOWN") return r;  // the short form: no addresses
        return invalid(proto == "TCP4" || proto == "TCP6" ? "v1: addresses missing"
                                                          : "v1: protocol is not TCP4, TCP6 or UNKNOWN");
    }
    if (proto == "UNKNOWN") return r;  // whatever follows is to be ignored
    if (proto != "TCP4" && proto != "TCP6") return invalid("v1: protocol is not TCP4, TCP6 or UNKNOWN");
    const int af = proto == "TCP4" ? AF_INET : AF_INET6;
    std::string_view src, dst, sport, dport;
    if (!next_field(rest, src) || !next_field(rest, dst) || !next_field(rest, sport))
        return invalid("v1: fields missing or not separated by single spaces");
    dport = rest;
    std::uint16_t sp = 0, dp = 0;
    if (!v1_port(sport, sp) || !v1_port(dport, dp))
        return invalid("v1: port is not a number from 0 to 65535 without leading zeros");
    if (!v1_address(src, af, sp, h.source) || !v1_address(dst, af, dp, h.destination))
        return invalid(af == AF_INET ? "v1: address is not IPv4 as TCP4 says"
                                     : "v1: address is not IPv6 as TCP6 says");
    h.family = af == AF_INET ? sock::family::inet : sock::family::inet6;
    return r;
}

// -- version 2 --------------------------------------------------------------------------------

address v2_unix_address(const char* p) {
    std::size_t n = ::strnlen(p, 108);
    if (n == 0 && std::any_of(p, p + 108, [](char c) { return c != '\0'; })) {
        n = 1 + ::strnlen(p + 1, 107);  // abstract: a NUL, then the name
    }
    ::sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, p, n);
    return address::from_native(reinterpret_cast<const ::sockaddr*>(&un),
                                static_cast<::socklen_t>(offsetof(::sockaddr_un, sun_path) + n));
}

template <class Native>
address v2_ip_address(int af, const char* addr, const char* port) {
    ::sockaddr_storage ss{};
    if constexpr (std::is_same_v<Native, ::sockaddr_in>) {
        auto& in = reinterpret_cast<::sockaddr_in&>(ss);
        std::memcpy(&in.sin_addr, addr, 4);
        std::memcpy(&in.sin_port, port, 2);
    } else {
        auto& in6 = reinterpret_cast<::sockaddr_in6&>(ss);
        std::memcpy(&in6.sin6_addr, addr, 16);
        std::memcpy(&in6.sin6_port, port, 2);
    }
    ss.ss_family = static_cast<sa_family_t>(af);
    return address::from_native(reinterpret_cast<const ::sockaddr*>(&ss), sizeof(Native));
}

// Walks the TLVs: each must fit in the header; a CRC32C one must match the header's CRC.
std::string_view check_tlvs(std::string_view header, std::size_t from) {
    std::string_view tlvs = header.substr(from);
    while (!tlvs.empty()) {
        if (tlvs.size() < 3) return "v2: TLV overruns the header";
        const std::size_t n = be16(tlvs.data() + 1);
        if (tlvs.size() - 3 < n) return "v2: TLV overruns the header";
        if (static_cast<std::uint8_t>(tlvs[0]) == tlv_crc32c) {
            if (n != 4) return "v2: CRC32C TLV is not 4 bytes";
            const auto value_at = static_cast<std::size_t>(tlvs.data() + 3 - header.data());
            const auto* v = reinterpret_cast<const unsigned char*>(header.data() + value_at);
            const std::uint32_t sent = (std::uint32_t{v[0]} << 24) | (std::uint32_t{v[1]} << 16) |
                                       (std::uint32_t{v[2]} << 8) | v[3];
            // The checksum is of the whole header with its own field zeroed.
            constexpr char zeros[4] = {};
            std::uint32_t crc = crc32c(header.substr(0, value_at));
            crc = crc32c(std::string_view(zeros, 4), crc);
            crc = crc32c(header.substr(value_at + 4), crc);
            if (crc != sent) return "v2: CRC32C does not match";
        }
        tlvs.remove_prefix(3 + n);
    }
    return {};
}

proxy_result parse_v2(std::string_view bytes) {
    // Each fixed byte is judged as soon as it is there.
    if (bytes.size() > 12 && (static_cast<unsigned char>(bytes[12]) >> 4) != 2)
        return invalid("v2: version is not 2");
    if (bytes.size() > 12 && (bytes[12] & 0x0f) > 1) return invalid("v2: command is not LOCAL or PROXY");
    if (bytes.size() > 13 && (static_cast<unsigned char>(bytes[13]) >> 4) > 3)
        return invalid("v2: address family is not UNSPEC, INET, INET6 or UNIX");
    if (bytes.size() > 13 && (bytes[13] & 0x0f) > 2)
        return invalid("v2: transport is not UNSPEC, STREAM or DGRAM");
    if (bytes.size() < v2_fixed) return {};
    const std::size_t length = v2_fixed + be16(bytes.data() + 14);
    if (length > proxy_v2_max) return invalid("v2: header longer than 1024 bytes");
    if (bytes.size() < length) return {};

    const auto header = bytes.substr(0, length);
    const auto fam = static_cast<unsigned char>(header[13]);
    // Where the TLVs start is known for these (as HAProxy reads them, a LOCAL header with
    // UNSPEC has its TLVs at once); a PROXY header with UNSPEC in its family or transport
    // says nothing of its layout, so the rest is skipped unread.
    const bool local = (header[12] & 0x0f) == 0;
    std::size_t block = 0;
    bool known = true;
    switch (fam) {
    case 0x00: known = local; break;
    case 0x11: case 0x12: block = v2_inet; break;
    case 0x21: case 0x22: block = v2_inet6; break;
    case 0x31: case 0x32: block = v2_unix; break;
    default: known = false; break;
    }
    if (length - v2_fixed < block) return invalid("v2: length is shorter than the addresses");

    proxy_result r;
    r.status = proxy_status::complete;
    auto& h = r.header;
    h.version = 2;
    h.length = length;
    h.command = local ? proxy_command::local : proxy_command::proxy;
    if (!known) return r;
    if (const auto why = check_tlvs(header, v2_fixed + block); !why.empty()) return invalid(why);
    h.tlvs = header.substr(v2_fixed + block);
    // LOCAL: the addresses (if any) are the front door's own business; the real ends stand.
    if (h.command == proxy_command::local || block == 0) return r;
    h.type = (fam & 0x0f) == 2 ? sock::kind::dgram : sock::kind::stream;
    const char* a = header.data() + v2_fixed;
    switch (fam >> 4) {
    case 1:
        h.family = sock::family::inet;
        h.source = v2_ip_address<::sockaddr_in>(AF_INET, a, a + 8);
        h.destination = v2_ip_address<::sockaddr_in>(AF_INET, a + 4, a + 10);
        break;
    case 2:
        h.family = sock::family::inet6;
        h.source = v2_ip_address<::sockaddr_in6>(AF_INET6, a, a + 32);
        h.destination = v2_ip_address<::sockaddr_in6>(AF_INET6, a + 16, a + 34);
        break;
    default:
        h.family = sock::family::local;
        h.source = v2_unix_address(a);
        h.destination = v2_unix_address(a + 108);
        break;
    }
    return r;
}

}  // namespace

std::uint32_t crc32c(std::string_view data, std::uint32_t crc) noexcept {
    crc = ~crc;
    for (char c : data) crc = crc32c_table[(crc ^ static_cast<unsigned char>(c)) & 0xff] ^ (crc >> 8);
    return ~crc;
}

std::optional<std::string_view> proxy_header::tlv(std::uint8_t tlv_type) const noexcept {
    std::string_view rest = tlvs;
    while (rest.size() >= 3) {
        const std::size_t n = be16(rest.data() + 1);
        if (rest.size() - 3 < n) break;
        if (static_cast<std::uint8_t>(rest[0]) == tlv_type) return rest.substr(3, n);
        rest.remove_prefix(3 + n);
    }
    return std::nullopt;
}

proxy_result parse_proxy_header(std::string_view bytes) {
    if (bytes.empty()) return {};
    if (bytes[0] == 'P') {
        if (!starts_like(bytes, v1_prefix)) return invalid("not a PROXY header");
        if (bytes.size() <= v1_prefix.size()) return {};
        return parse_v1(bytes);
    }
    if (!starts_like(bytes, v2_signature)) return invalid("not a PROXY header");
    return parse_v2(bytes);
}

}  // namespace sock
