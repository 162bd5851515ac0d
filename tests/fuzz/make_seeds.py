#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora into DIR/<target>/: for the PROXY header, the examples and
limits of HAProxy's doc/proxy-protocol.txt (v1 lines, v2 headers of every family, LOCAL, TLVs,
a CRC32C), each also followed by payload; command-line addresses and networks; greetings."""

import os
import socket
import struct
import sys

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def v2(ver_cmd: int, fam: int, body: bytes) -> bytes:
    return V2_SIG + bytes([ver_cmd, fam]) + struct.pack("!H", len(body)) + body


def tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + struct.pack("!H", len(value)) + value


def v2_inet(src: str, dst: str, sport: int, dport: int, tlvs: bytes = b"", fam: int = 0x11) -> bytes:
    af = socket.AF_INET if fam >> 4 == 1 else socket.AF_INET6
    body = socket.inet_pton(af, src) + socket.inet_pton(af, dst) + struct.pack("!HH", sport, dport)
    return v2(0x21, fam, body + tlvs)


def with_crc(header: bytes) -> bytes:
    return header[:-4] + struct.pack("!I", crc32c(header))


def proxy_seeds() -> list:
    full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    v1 = [
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
        b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
        f"PROXY TCP6 {full} {full} 65535 65535\r\n".encode(),
        b"PROXY TCP6 2001:db8::1 ::1 1 0\r\n",
        b"PROXY UNKNOWN\r\n",
        f"PROXY UNKNOWN {full} {full} 65535 65535\r\n".encode(),
    ]
    unix_src = b"/run/client.sock".ljust(108, b"\x00")
    unix_dst = b"\x00abstract".ljust(108, b"\x00")
    v2s = [
        v2_inet("192.168.0.1", "192.168.0.11", 56324, 443),
        v2_inet("10.0.0.1", "10.0.0.2", 53, 5353, fam=0x12),
        v2_inet("2001:db8::1", "::1", 1, 2, fam=0x21),
        v2_inet("2001:db8::1", "::1", 1, 2, fam=0x22),
        v2(0x21, 0x31, unix_src + unix_dst),
        v2(0x21, 0x32, unix_src + unix_dst),
        v2(0x20, 0x00, b""),  # LOCAL, as HAProxy's health checks
        v2(0x21, 0x00, b""),
        v2_inet("1.2.3.4", "5.6.7.8", 1, 2,
                tlv(0x01, b"h2") + tlv(0x02, b"example.com") + tlv(0x04, b"") +
                tlv(0x05, b"unique-id") + tlv(0x20, b"\x01\x00\x00\x00\x00" + tlv(0x21, b"TLSv1.3")) +
                tlv(0x30, b"netns")),
        with_crc(v2_inet("1.2.3.4", "5.6.7.8", 1000, 2000, tlv(0x03, b"\x00" * 4))),
        with_crc(v2(0x20, 0x00, tlv(0x03, b"\x00" * 4))),
    ]
    out = []
    for h in v1 + v2s:
        out += [h, h + b"GET / HTTP/1.1\r\n\r\n", h + b"1"]
    return out


def address_seeds() -> list:
    return [s.encode() for s in [
        "localhost:8001", "127.0.0.1:8001", "[::1]:8001", ":8001", "localhost", "::1",
        "unix:/run/greet.sock", "/run/greet.sock", "[fe80::1%2]:80", "host:65535", "host:0",
        "10.0.0.0/8", "::1/128", "unix", "127.0.0.0/8,::1/128,unix", "0.0.0.0/0", "fe80::/10",
    ]]


def greeting_seeds() -> list:
    return [b"1", b"", b"2", b"1\n", b"11", b"\x00", b"x" * 1024]


def main() -> None:
    root = sys.argv[1]
    for name, seeds in [("proxy_header", proxy_seeds()), ("parse_address", address_seeds()),
                        ("greeting", greeting_seeds())]:
        d = os.path.join(root, name)
        os.makedirs(d, exist_ok=True)
        for i, s in enumerate(seeds):
            with open(os.path.join(d, f"seed-{i:03d}"), "wb") as f:
                f.write(s)


if __name__ == "__main__":
    main()
