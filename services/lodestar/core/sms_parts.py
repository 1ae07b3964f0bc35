"""How an SMS body is encoded and split into message parts.

Contract:

- ``sms_encoding(text)`` is ``GSM7`` when every character is in the GSM 03.38
  default alphabet or its extension table (``^ { } \\ [ ~ ] | €`` and form
  feed), else ``UCS2``. National language shift tables are not used.
- Sizes: GSM-7 counts septets (a basic character 1, an extension character 2,
  as ESC + character); UCS-2 counts UTF-16 code units (a character outside
  the BMP is 2, as on every real network that sends "UCS-2" as UTF-16).
- A text that fits one message (160 septets / 70 units) is one part;
  otherwise parts of at most 153 septets / 67 units (the rest of each 140-byte
  payload holds the concatenation header). Parts are filled greedily; an
  extension character is never split from its escape, and a surrogate pair
  never split across parts.
- ``split_sms(text)`` returns the parts, ``"".join(parts) == text``; the empty
  text has no parts. ``sms_parts(text)`` adds the encoding and each part's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The 127 printable characters of the GSM 03.38 default alphabet (0x1B is the escape)."""

GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
"""Characters of the GSM 03.38 extension table, each sent as ESC + one septet."""

GSM7_SINGLE = 160
GSM7_PART = 153
UCS2_SINGLE = 70
UCS2_PART = 67


class SmsEncoding(StrEnum):
    GSM7 = "GSM7"
    UCS2 = "UCS2"


@dataclass(frozen=True)
class SmsParts:
    encoding: SmsEncoding
    parts: tuple[str, ...]
    sizes: tuple[int, ...]
    """Size of each part: septets for GSM7, UTF-16 code units for UCS2."""

    @property
    def count(self) -> int:
        return len(self.parts)


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` has a GSM 03.38 encoding."""
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def sms_encoding(text: str) -> SmsEncoding:
    """GSM7 when the text fits the GSM alphabet (with extensions), else UCS2."""
    return SmsEncoding.GSM7 if is_gsm7(text) else SmsEncoding.UCS2


def char_size(char: str, encoding: SmsEncoding) -> int:
    """Septets (GSM7) or UTF-16 code units (UCS2) one character takes."""
    if encoding is SmsEncoding.GSM7:
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def text_size(text: str, encoding: SmsEncoding | None = None) -> int:
    """Size of ``text`` in its encoding's units (``encoding`` defaults to ``sms_encoding``)."""
    enc = sms_encoding(text) if encoding is None else encoding
    return sum(char_size(c, enc) for c in text)


def sms_parts(text: str) -> SmsParts:
    """The encoding, parts and part sizes of ``text``."""
    encoding = sms_encoding(text)
    single, limit = (
        (GSM7_SINGLE, GSM7_PART) if encoding is SmsEncoding.GSM7 else (UCS2_SINGLE, UCS2_PART)
    )
    total = text_size(text, encoding)
    if total == 0:
        return SmsParts(encoding, (), ())
    if total <= single:
        return SmsParts(encoding, (text,), (total,))
    parts: list[str] = []
    sizes: list[int] = []
    start = 0
    size = 0
    for index, char in enumerate(text):
        width = char_size(char, encoding)
        if size + width > limit:
            parts.append(text[start:index])
            sizes.append(size)
            start, size = index, 0
        size += width
    parts.append(text[start:])
    sizes.append(size)
    return SmsParts(encoding, tuple(parts), tuple(sizes))


def split_sms(text: str) -> list[str]:
    """The message parts of ``text``, in order; joined they give ``text`` back."""
    return list(sms_parts(text).parts)


def parts_count(text: str) -> int:
    """How many message parts ``text`` takes (0 for the empty text)."""
    return sms_parts(text).count
