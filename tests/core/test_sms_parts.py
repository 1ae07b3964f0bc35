"""SMS encoding and message parts (lodestar.core.sms_parts)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lodestar.core.sms_parts import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    GSM7_PART,
    GSM7_SINGLE,
    UCS2_PART,
    UCS2_SINGLE,
    SmsEncoding,
    parts_count,
    sms_encoding,
    sms_parts,
    split_sms,
    text_size,
)


def test_alphabet_sizes() -> None:
    assert len(GSM7_BASIC) == 127  # 128 code points minus the escape
    assert "\x1b" not in GSM7_BASIC
    assert GSM7_BASIC.isdisjoint(GSM7_EXTENSION)
    assert len(GSM7_EXTENSION) == 10


def test_encoding_detection() -> None:
    assert sms_encoding("Hello, world! @£$¥ ÄÖÑÜ§¿") is SmsEncoding.GSM7
    assert sms_encoding("Price: 5€ [sale] {now} ~ | ^ \\") is SmsEncoding.GSM7
    assert sms_encoding("") is SmsEncoding.GSM7
    assert sms_encoding("Grüße ç") is SmsEncoding.UCS2  # ç (lowercase) is not GSM, Ç is
    assert sms_encoding("こんにちは") is SmsEncoding.UCS2
    assert sms_encoding("ok 👍") is SmsEncoding.UCS2
    assert sms_encoding("`backtick`") is SmsEncoding.UCS2


def test_gsm_single_and_multi_part_boundaries() -> None:
    assert split_sms("a" * 160) == ["a" * 160]
    assert [len(p) for p in split_sms("a" * 161)] == [153, 8]
    assert parts_count("a" * 306) == 2
    assert parts_count("a" * 307) == 3
    assert split_sms("") == []
    assert parts_count("") == 0


def test_extension_characters_count_two() -> None:
    assert text_size("€€", SmsEncoding.GSM7) == 4
    assert parts_count("€" * 80) == 1  # 160 septets
    assert parts_count("€" * 80 + "a") == 2


def test_extension_character_never_split() -> None:
    text = "a" * 152 + "€" + "b" * 10
    info = sms_parts(text)
    assert info.parts == ("a" * 152, "€" + "b" * 10)
    assert info.sizes == (152, 12)


def test_ucs2_boundaries() -> None:
    assert parts_count("я" * 70) == 1
    info = sms_parts("я" * 71)
    assert info.encoding is SmsEncoding.UCS2
    assert info.sizes == (67, 4)


def test_surrogate_pair_never_split() -> None:
    text = "я" * 66 + "😀" + "я" * 10
    info = sms_parts(text)
    assert info.parts == ("я" * 66, "😀" + "я" * 10)
    assert info.sizes == (66, 12)
    assert parts_count("😀" * 35) == 1  # 70 code units
    assert parts_count("😀" * 35 + "x") == 2


gsm_text = st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION), max_size=700)
any_text = st.text(max_size=400)


def _check(text: str) -> None:
    info = sms_parts(text)
    assert "".join(info.parts) == text
    assert "".join(split_sms(text)) == text
    assert info.count == len(info.parts) == len(info.sizes)
    single, limit = (GSM7_SINGLE, GSM7_PART) if info.encoding is SmsEncoding.GSM7 else (
        UCS2_SINGLE, UCS2_PART)
    for part, size in zip(info.parts, info.sizes, strict=True):
        assert part
        assert size == text_size(part, info.encoding)
        assert size <= (single if info.count == 1 else limit)
    if info.encoding is SmsEncoding.UCS2:
        for size, part in zip(info.sizes, info.parts, strict=True):
            assert size == len(part.encode("utf-16-le", "surrogatepass")) // 2


@given(gsm_text)
def test_gsm_parts_property(text: str) -> None:
    assert sms_encoding(text) is SmsEncoding.GSM7
    _check(text)


@given(any_text)
def test_any_text_parts_property(text: str) -> None:
    _check(text)


@given(any_text)
def test_parts_are_greedy(text: str) -> None:
    info = sms_parts(text)
    limit = GSM7_PART if info.encoding is SmsEncoding.GSM7 else UCS2_PART
    if info.count > 1:
        for part, nxt in zip(info.parts, info.parts[1:], strict=False):
            # the next part's first character did not fit in this one
            assert text_size(part + nxt[0], info.encoding) > limit
