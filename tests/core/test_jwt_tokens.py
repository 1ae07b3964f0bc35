import base64
import json

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from lodestar.core.jwt_tokens import sign_jwt


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_es256_token_verifies_with_the_public_key_and_carries_kid() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    token = sign_jwt({"iss": "TEAM123", "iat": 1700000000}, key, {"kid": "KEY1"})
    head, body, sig = token.split(".")
    assert json.loads(_unb64(head)) == {"alg": "ES256", "typ": "JWT", "kid": "KEY1"}
    assert json.loads(_unb64(body)) == {"iss": "TEAM123", "iat": 1700000000}
    raw = _unb64(sig)
    assert len(raw) == 64
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key.public_key().verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        key.public_key().verify(der, f"{head}.x{body}".encode(), ec.ECDSA(hashes.SHA256()))


def test_rs256_token_verifies_with_the_public_key() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = sign_jwt({"scope": "https://www.googleapis.com/auth/firebase.messaging"}, key)
    head, body, sig = token.split(".")
    assert json.loads(_unb64(head))["alg"] == "RS256"
    key.public_key().verify(_unb64(sig), f"{head}.{body}".encode(), padding.PKCS1v15(),
                            hashes.SHA256())


def test_other_curves_are_refused() -> None:
    with pytest.raises(ValueError, match="P-256"):
        sign_jwt({}, ec.generate_private_key(ec.SECP384R1()))
