from __future__ import annotations

import json
import time

import pytest
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.channels.push_peers import decrypt_webpush, unb64, verify_es256

from lodestar.core.jwt_tokens import b64url
from lodestar.core.webpush_crypto import (
    MAX_PAYLOAD,
    PayloadTooLarge,
    SubscriptionError,
    encrypt,
    encrypt_payload,
    load_vapid_key,
    new_vapid_keys,
    origin,
    parse_subscription,
    public_bytes,
    vapid_authorization,
)

# RFC 8291, Appendix A (values base64url as printed there).
PLAINTEXT = b"When I grow up, I want to be a watermelon"
AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
AS_PUBLIC = ("BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3"
             "jl7A8")
UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
UA_PUBLIC = ("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNto"
             "IAiw4")
SALT = "DGv6ra1nlYgDCS1FRnbzlw"
AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
BODY = ("DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocIn"
        "mYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNW"
        "QexSgSxsj_Qulcy4a-fN")


def _key(raw: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(unb64(raw), "big"), ec.SECP256R1())


def test_rfc8291_appendix_a_vector_is_reproduced_exactly() -> None:
    sender = _key(AS_PRIVATE)
    assert b64url(public_bytes(sender)) == AS_PUBLIC
    body = encrypt(PLAINTEXT, unb64(UA_PUBLIC), unb64(AUTH), sender_key=sender, salt=unb64(SALT))
    assert b64url(body) == BODY


def test_the_rfc_vector_decrypts_with_the_independent_receiver() -> None:
    decrypted = decrypt_webpush(unb64(BODY), _key(UA_PRIVATE), unb64(AUTH))
    assert decrypted.plaintext == PLAINTEXT
    assert decrypted.record_size == 4096
    assert b64url(decrypted.sender_public) == AS_PUBLIC


def test_fresh_encryptions_differ_and_decrypt() -> None:
    ua = ec.generate_private_key(ec.SECP256R1())
    auth = b"0123456789abcdef"
    address = json.dumps({"endpoint": "https://push.example.test/x",
                          "keys": {"p256dh": b64url(public_bytes(ua)), "auth": b64url(auth)}})
    subscription = parse_subscription(address)
    message = "héllo ✓".encode()
    one, two = encrypt_payload(message, subscription), encrypt_payload(message, subscription)
    assert one != two and one[:16] != two[:16]
    assert decrypt_webpush(one, ua, auth).plaintext == message
    assert decrypt_webpush(two, ua, auth).plaintext == message
    with pytest.raises(InvalidTag):  # the wrong auth secret fails the GCM tag
        decrypt_webpush(one, ua, b"fedcba9876543210")


UA = ec.generate_private_key(ec.SECP256R1())


@settings(max_examples=25, deadline=None)
@given(plaintext=st.binary(max_size=MAX_PAYLOAD), auth=st.binary(min_size=16, max_size=16))
def test_any_payload_round_trips(plaintext: bytes, auth: bytes) -> None:
    body = encrypt(plaintext, public_bytes(UA), auth,
                   sender_key=ec.generate_private_key(ec.SECP256R1()), salt=auth[::-1])
    assert len(body) == 86 + len(plaintext) + 17
    assert decrypt_webpush(body, UA, auth).plaintext == plaintext


def test_payload_size_limit() -> None:
    ua = ec.generate_private_key(ec.SECP256R1())
    sub = parse_subscription(json.dumps({
        "endpoint": "https://p.test/", "keys": {"p256dh": b64url(public_bytes(ua)),
                                                "auth": b64url(b"a" * 16)}}))
    body = encrypt_payload(b"x" * MAX_PAYLOAD, sub)
    assert len(body) == 4096
    assert decrypt_webpush(body, ua, b"a" * 16).plaintext == b"x" * MAX_PAYLOAD
    with pytest.raises(PayloadTooLarge):
        encrypt_payload(b"x" * (MAX_PAYLOAD + 1), sub)


@pytest.mark.parametrize("address", [
    "not json",
    "[]",
    json.dumps({"endpoint": "ftp://x/", "keys": {"p256dh": UA_PUBLIC, "auth": AUTH}}),
    json.dumps({"endpoint": "https://x/", "keys": {"p256dh": UA_PUBLIC}}),
    json.dumps({"endpoint": "https://x/", "keys": {"p256dh": AUTH, "auth": AUTH}}),
    json.dumps({"endpoint": "https://x/", "keys": {"p256dh": UA_PUBLIC, "auth": UA_PUBLIC}}),
    json.dumps({"endpoint": "https://x/", "keys": {"p256dh": "BA" + "A" * 85, "auth": AUTH}}),
])
def test_bad_subscriptions_are_refused(address: str) -> None:
    with pytest.raises(SubscriptionError):
        parse_subscription(address)


def test_origin() -> None:
    assert origin("https://fcm.googleapis.com/fcm/send/abc?x=1") == "https://fcm.googleapis.com"
    assert origin("https://push.example:443/a") == "https://push.example"
    assert origin("http://127.0.0.1:8123/ok/1") == "http://127.0.0.1:8123"
    assert origin("HTTPS://user:pw@Push.Example:8443?x") == "https://push.example:8443"
    assert origin("https://[2001:db8::1]:443/p") == "https://[2001:db8::1]"
    for bad in ("push.example/x", "ftp://push.example/", "https:///x", "https://h:99999/",
                "https://h:x/"):
        with pytest.raises(ValueError):
            origin(bad)


def test_vapid_header_verifies_with_the_key_in_k() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    header = vapid_authorization("https://updates.push.services.mozilla.com/wpush/v2/abc",
                                 key, "mailto:ops@example.test", now)
    assert header.startswith("vapid t=")
    token, k = header.removeprefix("vapid t=").split(", k=")
    assert unb64(k) == public_bytes(key)
    claims = verify_es256(token, unb64(k))
    assert claims == {"aud": "https://updates.push.services.mozilla.com",
                      "exp": now + 12 * 3600, "sub": "mailto:ops@example.test"}
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidSignature):
        verify_es256(token, public_bytes(other))


def test_vapid_refuses_bad_subject_and_lifetime() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ValueError):
        vapid_authorization("https://p.test/x", key, "ops@example.test", 0)
    with pytest.raises(ValueError):
        vapid_authorization("https://p.test/x", key, "https://example.test", 0,
                            lifetime_s=24 * 3600 + 1)


def test_load_vapid_key_from_raw_and_pem() -> None:
    raw = load_vapid_key(UA_PRIVATE)
    assert b64url(public_bytes(raw)) == UA_PUBLIC
    pem = raw.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    assert public_bytes(load_vapid_key(pem)) == public_bytes(raw)
    with pytest.raises(ValueError):
        load_vapid_key(AUTH)


def test_new_vapid_keys_load_back() -> None:
    private, public = new_vapid_keys()
    assert b64url(public_bytes(load_vapid_key(private))) == public
    assert len(unb64(public)) == 65 and new_vapid_keys()[0] != private
