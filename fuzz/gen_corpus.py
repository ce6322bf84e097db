#!/usr/bin/env python3
"""Writes the seed corpus of the `decode` target (fuzz/corpus/decode).

Each file is one knob byte (chunk size and max frame length, see fuzz_targets/decode.rs) followed
by a byte stream: valid frames of every type, and broken ones. Re-run after a wire format change.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "decode")


def frame(ty, payload=b""):
    return struct.pack(">IB", 1 + len(payload), ty) + payload


def u64(*xs):
    return b"".join(struct.pack(">Q", x) for x in xs)


VALID = [
    frame(0x00, u64(7, 3) + b"hello"),
    frame(0x01, u64(1) + "worker/é".encode()),
    frame(0x02, u64(42)),
    frame(0x03, u64(42)),
    frame(0x04, u64(1) + b"\x01" + u64(99)),
    frame(0x04, u64(2) + b"\x00" + u64(0)),
    frame(0x05, b"IRIS" + struct.pack(">H", 1) + u64(5) + bytes(range(32))),
    frame(0x06, bytes(range(32, 64))),
    frame(0x07),
    frame(0x08, b"bad cookie"),
    frame(0x09, u64(1, 2) + b"\x03" + b"ValueError: boom"),
    frame(0x0A, u64(10, 2) + b"\x07" + struct.pack(">H", 4) + b"oops" + b"meta"),
    frame(0x0B, u64(10, 1, 2)),
    frame(0x0C, u64(10)),
    frame(0x0D, u64(1, 2)),
    frame(0x0E, u64(1, 2)),
    frame(0x0F, struct.pack(">H", 2) + b"unknown frame type"),
]

SEEDS = {
    "valid_all_types": b"\x05" + b"".join(VALID),
    "valid_all_types_bytewise": b"\x00" + b"".join(VALID),
    "oversized_then_ping": b"\x00" + struct.pack(">I", 5000) + b"\xaa" * 5000 + frame(0x02, u64(1)),
    "huge_length_prefix": b"\x07" + struct.pack(">I", 0xFFFFFFFF) + b"\x00" * 64,
    "unknown_type_then_pong": b"\x09" + frame(0x7E, b"junk") + frame(0x03, u64(2)),
    "malformed_bodies": b"\x11"
    + frame(0x02, b"\x01")
    + frame(0x01, u64(1) + b"\xff\xfe")
    + frame(0x05, b"XXXX" + bytes(42))
    + frame(0x09, u64(1, 2) + b"\x07\xff\xff")
    + frame(0x04, u64(1) + b"\x02" + u64(0)),
    "zero_length": b"\x01" + b"\x00\x00\x00\x00\x02",
    "truncated": b"\x03" + frame(0x00, u64(1, 2) + b"payload")[:-3],
    "garbage": b"\x2a" + bytes((i * 167 + 13) % 256 for i in range(512)),
}

os.makedirs(OUT, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
