"""Avro single-object encoding: the framing of every Lodestar Kafka value.

Layout (Avro specification, "Single-object encoding")::

    C3 01 | 8-byte CRC-64-AVRO fingerprint, little-endian | Avro binary body

The fingerprint is taken over the schema's Parsing Canonical Form, so doc
strings, defaults and logical types do not change it.
"""

from __future__ import annotations

from typing import Final

from fastavro.schema import fingerprint

MAGIC: Final = b"\xc3\x01"
FINGERPRINT_SIZE: Final = 8
HEADER_SIZE: Final = len(MAGIC) + FINGERPRINT_SIZE


class FramingError(ValueError):
    """The bytes do not start with a single-object header."""


def fingerprint64(canonical_form: str) -> bytes:
    """CRC-64-AVRO fingerprint of a Parsing Canonical Form, as the 8 bytes on the wire.

    fastavro's hex digest already lists the bytes little-endian, the order
    single-object encoding uses.
    """
    return bytes.fromhex(fingerprint(canonical_form, "CRC-64-AVRO"))


def header(schema_fingerprint: bytes) -> bytes:
    """The 10-byte single-object header for a schema with ``schema_fingerprint``."""
    if len(schema_fingerprint) != FINGERPRINT_SIZE:
        size = len(schema_fingerprint)
        raise ValueError(f"a fingerprint has {FINGERPRINT_SIZE} bytes, not {size}")
    return MAGIC + schema_fingerprint


def read_fingerprint(data: bytes) -> bytes:
    """The schema fingerprint in ``data``'s header; ``FramingError`` if there is no header."""
    if len(data) < HEADER_SIZE:
        raise FramingError(
            f"{len(data)} bytes is shorter than the {HEADER_SIZE}-byte single-object header"
        )
    if data[:2] != MAGIC:
        raise FramingError(
            f"wrong magic bytes {data[:2].hex(' ')} (expected c3 01): "
            "not Avro single-object encoding"
        )
    return bytes(data[2:HEADER_SIZE])
