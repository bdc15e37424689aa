from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from retail.kernel.errors import Unauthorized
from retail.kernel.security import TokenCodec

SECRET = "s" * 64  # long enough for HS512 too, which one test forges with
codec = TokenCodec(SECRET, access_ttl_seconds=60)


def test_access_token_round_trip() -> None:
    principal = codec.verify_access(codec.issue_access("u1", "admin", "fam-1"))
    assert (principal.user_id, principal.role, principal.session_id) == ("u1", "admin", "fam-1")
    assert principal.is_admin


def test_service_and_access_tokens_are_not_interchangeable() -> None:
    with pytest.raises(Unauthorized):
        codec.verify_service(codec.issue_access("u1", "admin"))
    with pytest.raises(Unauthorized):
        codec.verify_access(codec.issue_service("orders"))
    assert codec.verify_service(codec.issue_service("orders")) == "orders"


def test_a_user_token_signed_as_a_service_with_the_user_key_fails() -> None:
    forged = jwt.encode(
        {
            "sub": "service:orders",
            "typ": "service",
            "aud": "retail-internal",
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        },
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(Unauthorized):
        codec.verify_service(forged)


def test_algorithm_is_pinned_none_is_refused() -> None:
    claims = {
        "sub": "u1",
        "role": "admin",
        "typ": "access",
        "iss": "retail-auth",
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
    }

    def b64(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    with pytest.raises(Unauthorized):
        codec.verify_access(unsigned)
    other_alg = jwt.encode(claims, SECRET, algorithm="HS512")
    with pytest.raises(Unauthorized):
        codec.verify_access(other_alg)


def test_expired_wrong_key_and_garbage_are_refused() -> None:
    expired = TokenCodec(SECRET, access_ttl_seconds=-60).issue_access("u1", "customer")
    for token in [expired, TokenCodec("o" * 48).issue_access("u1", "customer"), "x.y.z", ""]:
        with pytest.raises(Unauthorized):
            codec.verify_access(token)


def test_unknown_role_is_refused() -> None:
    now = int(time.time())
    token = jwt.encode(
        {
            "sub": "u1",
            "role": "root",
            "typ": "access",
            "iss": "retail-auth",
            "iat": now,
            "exp": now + 60,
        },
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(Unauthorized):
        codec.verify_access(token)


def test_a_token_seen_before_is_not_decoded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    codec = TokenCodec(SECRET)
    token = codec.issue_access("u1", "customer")
    calls: list[str] = []
    decode = jwt.decode

    def counting(*args: object, **kwargs: object) -> object:
        calls.append("decode")
        return decode(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counting)
    first = codec.verify_access(token)
    assert codec.verify_access(token) == first
    assert first.user_id == "u1"
    assert calls == ["decode"]


def test_a_remembered_token_is_checked_again_once_expired(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codec = TokenCodec(SECRET, access_ttl_seconds=60)
    token = codec.issue_access("u1", "customer")
    codec.verify_access(token)
    later = time.time() + 60 + 6  # past exp and the 5 s leeway
    monkeypatch.setattr(time, "time", lambda: later)

    def expired(*args: object, **kwargs: object) -> object:
        raise jwt.ExpiredSignatureError  # what PyJWT answers at that time

    monkeypatch.setattr(jwt, "decode", expired)
    with pytest.raises(Unauthorized):
        codec.verify_access(token)


def test_a_remembered_token_keeps_its_kind() -> None:
    codec = TokenCodec(SECRET)
    access = codec.issue_access("u1", "admin")
    service = codec.issue_service("orders")
    assert codec.verify_access(access).is_admin
    assert codec.verify_service(service) == "orders"
    with pytest.raises(Unauthorized):
        codec.verify_service(access)
    with pytest.raises(Unauthorized):
        codec.verify_access(service)


def test_the_token_version_travels_in_the_ver_claim() -> None:
    token = codec.issue_access("u1", "customer", "fam-1", version=4)
    assert jwt.decode(token, options={"verify_signature": False})["ver"] == 4
    assert codec.verify_access(token).version == 4
    unversioned = codec.issue_access("u1", "customer")  # as tokens before versions were
    assert "ver" not in jwt.decode(unversioned, options={"verify_signature": False})
    assert codec.verify_access(unversioned).version == 0


@pytest.mark.parametrize("version", ["4", True, -1, 1.5])
def test_a_malformed_version_is_refused(version: object) -> None:
    now = int(time.time())
    claims = {
        "iss": "retail-auth",
        "sub": "u1",
        "role": "customer",
        "typ": "access",
        "iat": now,
        "exp": now + 60,
        "ver": version,
    }
    with pytest.raises(Unauthorized):
        codec.verify_access(jwt.encode(claims, SECRET, algorithm="HS256"))
