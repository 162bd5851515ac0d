// The PROXY protocol parser against HAProxy's doc/proxy-protocol.txt: its examples, every
// kind of malformed header it names, byte-by-byte arrival, and the payload left alone.

#include <sock/proxy_protocol.hpp>

#include "proxy_headers.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace {

using sock::parse_proxy_header;
using sock::proxy_status;
using namespace std::string_literals;

sock::proxy_result parse(std::string_view bytes) { return parse_proxy_header(bytes); }

void expect_invalid(std::string_view bytes, std::string_view why) {
    const auto r = parse(bytes);
    EXPECT_EQ(r.status, proxy_status::invalid) << testing::PrintToString(std::string(bytes));
    EXPECT_EQ(r.reason, why) << testing::PrintToString(std::string(bytes));
}

// Every prefix of a valid header needs more; the whole is complete, with or without payload.
void expect_arrives_byte_by_byte(const std::string& header) {
    for (std::size_t n = 0; n < header.size(); ++n)
        ASSERT_EQ(parse(header.substr(0, n)).status, proxy_status::need_more) << n << " bytes";
    EXPECT_EQ(parse(header).status, proxy_status::complete);
    EXPECT_EQ(parse(header).header.length, header.size());
}

// -- CRC32C -----------------------------------------------------------------------------------

TEST(Crc32c, KnownValues) {
    EXPECT_EQ(sock::crc32c(""), 0u);
    EXPECT_EQ(sock::crc32c("123456789"), 0xE3069283u);  // the standard check value
    // RFC 3720 (iSCSI) B.4: 32 bytes of zeros.
    EXPECT_EQ(sock::crc32c(std::string(32, '\0')), 0x8A9136AAu);
    // In pieces, as the parser computes it around the zeroed field.
    EXPECT_EQ(sock::crc32c("6789", sock::crc32c("12345")), 0xE3069283u);
}

// -- version 1 --------------------------------------------------------------------------------

TEST(ProxyV1, SpecificationExample) {
    const auto bytes = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n"s;
    const auto r = parse(bytes);
    ASSERT_EQ(r.status, proxy_status::complete) << r.reason;
    EXPECT_EQ(r.header.version, 1);
    EXPECT_EQ(r.header.command, sock::proxy_command::proxy);
    EXPECT_EQ(r.header.family, sock::family::inet);
    EXPECT_EQ(r.header.source, sock::address("192.168.0.1", 56324));
    EXPECT_EQ(r.header.destination, sock::address("192.168.0.11", 443));
    EXPECT_EQ(bytes.substr(r.header.length), "GET / HTTP/1.1\r\n");  // the payload is kept
}

TEST(ProxyV1, Tcp6) {
    const auto r = parse("PROXY TCP6 2001:db8::1 ::1 65535 0\r\n");
    ASSERT_EQ(r.status, proxy_status::complete) << r.reason;
    EXPECT_EQ(r.header.family, sock::family::inet6);
    EXPECT_EQ(r.header.source.to_string(), "[2001:db8::1]:65535");
    EXPECT_EQ(r.header.destination.to_string(), "[::1]:0");
}

TEST(ProxyV1, Unknown) {
    for (const char* line : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff:f::f ffff:f::f 65535 65535\r\n",
                             "PROXY UNKNOWN anything at all\r\n"}) {
        const auto r = parse(line);
        ASSERT_EQ(r.status, proxy_status::complete) << line << r.reason;
        EXPECT_EQ(r.header.family, sock::family::unspec) << line;
        EXPECT_TRUE(r.header.source.empty());
        EXPECT_EQ(r.header.length, std::string_view(line).size());
    }
}

TEST(ProxyV1, LongestLinesFit) {
    const std::string v4 = "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    EXPECT_EQ(v4.size(), 56u);
    EXPECT_EQ(parse(v4).status, proxy_status::complete);
    const std::string full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    const std::string v6 = "PROXY TCP6 " + full + " " + full + " 65535 65535\r\n";
    EXPECT_EQ(v6.size(), 104u);
    EXPECT_EQ(parse(v6).status, proxy_status::complete);
    const std::string worst = "PROXY UNKNOWN " + full + " " + full + " 65535 65535\r\n";
    EXPECT_EQ(worst.size(), sock::proxy_v1_max);
    EXPECT_EQ(parse(worst).status, proxy_status::complete);
}

TEST(ProxyV1, ArrivesByteByByte) {
    expect_arrives_byte_by_byte("PROXY TCP4 10.1.2.3 10.0.0.1 40000 8001\r\n");
    expect_arrives_byte_by_byte("PROXY UNKNOWN\r\n");
}

TEST(ProxyV1, MissingOrMisplacedCrlf) {
    expect_invalid("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "v1: LF without CR");
    expect_invalid("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "v1: CR without LF");
    expect_invalid("PROXY TCP4 1.2.3.4\n5.6.7.8 1 2\r\n", "v1: LF without CR");
    expect_invalid("PROXY UNKNOWN " + std::string(100, 'x'), "v1: no CRLF within 107 bytes");
    // CR as the 107th byte: the LF would be the 108th.
    expect_invalid("PROXY UNKNOWN " + std::string(92, 'x') + "\r\n", "v1: no CRLF within 107 bytes");
    EXPECT_EQ(parse("PROXY UNKNOWN " + std::string(91, 'x') + "\r\n").status, proxy_status::complete);
}

TEST(ProxyV1, BadNumbers) {
    const auto port = "v1: port is not a number from 0 to 65535 without leading zeros";
    expect_invalid("PROXY TCP4 1.2.3.4 5.6.7.8 65536 80\r\n", port);
    expect_invalid("PROXY TCP4 1.2.3.4 5.6.7.8 080 80\r\n", port);
    expect_invalid("PROXY TCP4 1.2.3.4 5.6.7.8 -1 80\r\n", port);
    expect_invalid("PROXY TCP4 1.2.3.4 5.6.7.8 1 99999999999\r\n", port);
    expect_invalid("PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n", port);
    expect_invalid("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", port);
    const auto v4 = "v1: address is not IPv4 as TCP4 says";
    expect_invalid("PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n", v4);
    expect_invalid("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", v4);
    expect_invalid("PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n", v4);
    expect_invalid("PROXY TCP4 ::1 5.6.7.8 1 2\r\n", v4);
    const auto v6 = "v1: address is not IPv6 as TCP6 says";
    expect_invalid("PROXY TCP6 1.2.3.4 ::1 1 2\r\n", v6);
    expect_invalid("PROXY TCP6 ::ffff:1.2.3.4 ::1 1 2\r\n", v6);
    expect_invalid("PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", v6);
}

TEST(ProxyV1, UnknownProtocolOrBadSpacing) {
    const auto proto = "v1: protocol is not TCP4, TCP6 or UNKNOWN";
    expect_invalid("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", proto);
    expect_invalid("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", proto);
    expect_invalid("PROXY \r\n", proto);
    expect_invalid("PROXY TCP4\r\n", "v1: addresses missing");
    const auto fields = "v1: fields missing or not separated by single spaces";
    expect_invalid("PROXY TCP4 1.2.3.4 5.6.7.8\r\n", fields);
    expect_invalid("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", fields);
    expect_invalid("PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n",
                   "v1: port is not a number from 0 to 65535 without leading zeros");
}

TEST(ProxyV1, NotAHeaderIsSaidAtTheFirstWrongByte) {
    expect_invalid("G", "not a PROXY header");
    expect_invalid("PROXX", "not a PROXY header");
    expect_invalid("PROXY\r\n", "not a PROXY header");
    EXPECT_EQ(parse("PROX").status, proxy_status::need_more);
    EXPECT_EQ(parse("").status, proxy_status::need_more);
}

// -- version 2 --------------------------------------------------------------------------------

TEST(ProxyV2, TcpOverIpv4) {
    const auto header = test::v2_tcp("192.168.0.1", "192.168.0.11", 56324, 443);
    EXPECT_EQ(header.size(), 28u);
    const auto bytes = header + "payload";
    const auto r = parse(bytes);
    ASSERT_EQ(r.status, proxy_status::complete) << r.reason;
    EXPECT_EQ(r.header.version, 2);
    EXPECT_EQ(r.header.command, sock::proxy_command::proxy);
    EXPECT_EQ(r.header.family, sock::family::inet);
    EXPECT_EQ(r.header.type, sock::kind::stream);
    EXPECT_EQ(r.header.source, sock::address("192.168.0.1", 56324));
    EXPECT_EQ(r.header.destination, sock::address("192.168.0.11", 443));
    EXPECT_EQ(bytes.substr(r.header.length), "payload");
    EXPECT_TRUE(r.header.tlvs.empty());
}

TEST(ProxyV2, TcpOverIpv6AndUdp) {
    auto r = parse(test::v2_tcp("2001:db8::7", "::1", 1, 2));
    ASSERT_EQ(r.status, proxy_status::complete) << r.reason;
    EXPECT_EQ(r.header.family, sock::family::inet6);
    EXPECT_EQ(r.header.source.to_string(), "[2001:db8::7]:1");
    const auto s = test::packed("10.0.0.1"), d = test::packed("10.0.0.2");
    r = parse(test::v2(0x21, 0x12, s + d + test::be16(53) + test::be16(5353)));
    ASSERT_EQ(r.status, proxy_status::complete) << r.reason;
    EXPECT_EQ(r.header.type, sock::kind::dgram);
    EXPECT_EQ(r.header.source, sock::address("10.0.0.1", 53));
}

TEST(ProxyV2, UnixAddresses) {
    std::string src(108, '\0'), dst(108, '\0');
    src.replace(0, 9, "/run/a.sk");
    dst.replace(0, 5, "\0abst", 5);  // abstract: a NUL, then the name
    const auto r = parse(test::v2(0x21, 0x31, src + dst));
    ASSERT_EQ(r.status, proxy_status::complete) << r.reason;
    EXPECT_EQ(r.header.family, sock::family::local);
    EXPECT_EQ(r.header.source, sock::address::unix_path("/run/a.sk"));
    EXPECT_EQ(r.header.destination, sock::address::unix_path("@abst"));
}

TEST(ProxyV2, LocalIsTheFrontDoorItself) {
    auto r = parse(test::v2_local());
    ASSERT_EQ(r.status, proxy_status::complete) << r.reason;
    EXPECT_EQ(r.header.command, sock::proxy_command::local);
    EXPECT_EQ(r.header.family, sock::family::unspec);
    EXPECT_EQ(r.header.length, 16u);
    // Addresses sent with LOCAL are skipped by the length, and ignored.
    auto with = test::v2_tcp("1.2.3.4", "5.6.7.8", 1, 2);
    with[12] = 0x20;
    r = parse(with);
    ASSERT_EQ(r.status, proxy_status::complete) << r.reason;
    EXPECT_EQ(r.header.command, sock::proxy_command::local);
    EXPECT_TRUE(r.header.source.empty());
    EXPECT_EQ(r.header.length, with.size());
}

TEST(ProxyV2, UnspecSkipsTheAddressBlock) {
    const auto r = parse(test::v2(0x21, 0x00, "whatever") + "payload");
    ASSERT_EQ(r.status, proxy_status::complete) << r.reason;
    EXPECT_EQ(r.header.family, sock::family::unspec);
    EXPECT_EQ(r.header.length, 24u);
}

TEST(ProxyV2, Tlvs) {
    const auto tlvs = test::tlv(0x02, "example.com") + test::tlv(0x04, "") + test::tlv(0x05, "id-1");
    const auto bytes = test::v2_tcp("1.2.3.4", "5.6.7.8", 1, 2, tlvs);  // the TLVs view it
    const auto r = parse(bytes);
    ASSERT_EQ(r.status, proxy_status::complete) << r.reason;
    EXPECT_EQ(r.header.tlvs, tlvs);
    EXPECT_EQ(r.header.tlv(0x02), "example.com");
    EXPECT_EQ(r.header.tlv(0x04), "");
    EXPECT_EQ(r.header.tlv(0x05), "id-1");
    EXPECT_EQ(r.header.tlv(0x01), std::nullopt);
}

TEST(ProxyV2, Crc32cChecked) {
    const auto good = test::v2_tcp_crc("1.2.3.4", "5.6.7.8", 1000, 2000);
    const auto r = parse(good);
    ASSERT_EQ(r.status, proxy_status::complete) << r.reason;
    EXPECT_EQ(r.header.source, sock::address("1.2.3.4", 1000));
    for (std::size_t i : {std::size_t{0}, std::size_t{20}, good.size() - 1}) {
        if (i < 16) continue;  // the fixed part fails for other reasons
        auto bad = good;
        bad[i] = static_cast<char>(bad[i] ^ 0x01);
        expect_invalid(bad, "v2: CRC32C does not match");
    }
    expect_invalid(test::v2_tcp("1.2.3.4", "5.6.7.8", 1, 2, test::tlv(0x03, "abc")),
                   "v2: CRC32C TLV is not 4 bytes");
}

TEST(ProxyV2, ArrivesByteByByte) {
    expect_arrives_byte_by_byte(test::v2_tcp("10.1.2.3", "10.0.0.1", 40000, 8001));
    expect_arrives_byte_by_byte(test::v2_tcp_crc("::1", "::2", 1, 2));
    expect_arrives_byte_by_byte(test::v2_local());
}

TEST(ProxyV2, BadFixedBytesAreSaidAtOnce) {
    auto h = test::v2_tcp("1.2.3.4", "5.6.7.8", 1, 2);
    auto with = [&](std::size_t i, char c) {
        auto b = h.substr(0, i + 1);  // just up to the wrong byte
        b[i] = c;
        return b;
    };
    expect_invalid(with(3, 'x'), "not a PROXY header");
    expect_invalid(with(12, 0x11), "v2: version is not 2");
    expect_invalid(with(12, 0x31), "v2: version is not 2");
    expect_invalid(with(12, 0x22), "v2: command is not LOCAL or PROXY");
    expect_invalid(with(13, 0x41), "v2: address family is not UNSPEC, INET, INET6 or UNIX");
    expect_invalid(with(13, 0x13), "v2: transport is not UNSPEC, STREAM or DGRAM");
}

TEST(ProxyV2, LengthsBeyondTheBufferOrShortOfTheAddresses) {
    // 0xffff announced: refused at the 16th byte, without waiting for (or holding) 64 KiB.
    expect_invalid(test::v2_signature + "\x21\x11\xff\xff", "v2: header longer than 1024 bytes");
    const auto max_body = sock::proxy_v2_max - 16;
    EXPECT_EQ(parse(test::v2(0x21, 0x00, std::string(max_body, 'x'))).status, proxy_status::complete);
    expect_invalid(test::v2(0x21, 0x00, std::string(max_body + 1, 'x')),
                   "v2: header longer than 1024 bytes");
    expect_invalid(test::v2(0x21, 0x11, std::string(11, 'x')), "v2: length is shorter than the addresses");
    expect_invalid(test::v2(0x21, 0x21, std::string(12, 'x')), "v2: length is shorter than the addresses");
    expect_invalid(test::v2(0x21, 0x31, std::string(215, 'x')), "v2: length is shorter than the addresses");
}

TEST(ProxyV2, TlvsThatOverrun) {
    const auto overrun = "v2: TLV overruns the header";
    expect_invalid(test::v2_tcp("1.2.3.4", "5.6.7.8", 1, 2, "\x02\x00"s), overrun);
    expect_invalid(test::v2_tcp("1.2.3.4", "5.6.7.8", 1, 2, test::tlv(0x02, "abc").substr(0, 5)), overrun);
    expect_invalid(test::v2_tcp("1.2.3.4", "5.6.7.8", 1, 2, "\x02\xff\xff" "abc"s), overrun);
    expect_invalid(test::v2(0x20, 0x00, "\x04\x00\x05" "ab"s), overrun);
}

}  // namespace
