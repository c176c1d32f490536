#!/usr/bin/env python3
"""Crypto-PAn oracle for tests/cryptopan_oracle.rs: the independent implementation
`yacryptopan` (PyPI) pseudonymises the addresses mamori's Rust code is checked against.

stdin:  first line: the 32-byte key as 64 hex digits; then one address per line.
stdout: one line per address: the pseudonym as 32 hex digits (IPv6) or 8 (IPv4), so
        the comparison does not depend on either side's text formatting.
"""
import ipaddress
import sys

import yacryptopan


def main() -> None:
    lines = sys.stdin.read().split()
    pan = yacryptopan.CryptoPAn(bytes.fromhex(lines[0]))
    out = []
    for text in lines[1:]:
        ip = ipaddress.ip_address(text)
        value = pan.anonymize_bin(int(ip), ip.version)
        out.append("%08x" % value if ip.version == 4 else "%032x" % value)
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
