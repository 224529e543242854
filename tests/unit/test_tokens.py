"""auth.tokens: strict HS256 JWTs; auth.scopes: what a token's scopes grant."""

import base64
import json

import pytest

from auth.scopes import KNOWN, Scope, grants, unknown
from auth.tokens import InvalidToken, decode, encode, mint

SECRET = "unit-test-secret-unit-test-secret"
NOW = 1_800_000_000


def b64(value: object) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_round_trip() -> None:
    token = mint(
        subject="s1", scopes=["tasks:read", "cron:run"], now_s=NOW, ttl_s=60, secret=SECRET
    )
    claims = decode(token, SECRET, now_s=NOW + 59)
    assert claims.subject == "s1"
    assert claims.scopes == {"tasks:read", "cron:run"}
    assert claims.expires_at == NOW + 60


def _signed(header: dict, claims: dict) -> str:
    good = encode(claims, SECRET).split(".")
    return f"{b64(header)}.{good[1]}.{good[2]}"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "malformed"),
        ("a.b", "malformed"),
        ("a.b.c.d", "malformed"),
        ("!!.??.**", "malformed"),
        (f"{b64([1])}.{b64({})}.x", "malformed"),
        (f"{b64({'alg': 'none'})}.{b64({'sub': 'x', 'exp': NOW + 9})}.", "algorithm"),
        (_signed({"alg": "HS512"}, {"sub": "x", "exp": NOW + 9}), "algorithm"),
        (_signed({"alg": "RS256"}, {"sub": "x", "exp": NOW + 9}), "algorithm"),
        (_signed({"typ": "JWT"}, {"sub": "x", "exp": NOW + 9}), "algorithm"),
        (encode({"sub": "x", "exp": NOW + 9}, "wrong-secret-wrong-secret"), "signature"),
        (encode({"sub": "x"}, SECRET), "expiry"),
        (encode({"sub": "x", "exp": "tomorrow"}, SECRET), "number"),
        (encode({"sub": "x", "exp": True}, SECRET), "number"),
        (encode({"sub": "x", "exp": NOW - 31}, SECRET), "expired"),
        (encode({"sub": "x", "exp": NOW + 60, "nbf": NOW + 90}, SECRET), "not yet"),
        (encode({"exp": NOW + 60}, SECRET), "subject"),
        (encode({"sub": "x", "exp": NOW + 60, "scope": ["admin"]}, SECRET), "scope"),
        (encode({"sub": "x", "exp": NOW + 9}, SECRET) + "=", "malformed"),
    ],
)
def test_rejections(token: str, reason: str) -> None:
    with pytest.raises(InvalidToken, match=reason):
        decode(token, SECRET, now_s=NOW)


def test_signature_covers_claims() -> None:
    header, _, signature = encode(
        {"sub": "x", "exp": NOW + 9, "scope": "tasks:read"}, SECRET
    ).split(".")
    forged = f"{header}.{b64({'sub': 'x', 'exp': NOW + 9, 'scope': 'admin'})}.{signature}"
    with pytest.raises(InvalidToken, match="signature"):
        decode(forged, SECRET, now_s=NOW)


def test_no_secret_configured_rejects_everything() -> None:
    with pytest.raises(InvalidToken, match="not configured"):
        decode(encode({"sub": "x", "exp": NOW + 9}, ""), "", now_s=NOW)


def test_clock_skew_leeway() -> None:
    token = encode({"sub": "x", "exp": NOW}, SECRET)
    assert decode(token, SECRET, now_s=NOW + 29).subject == "x"


@pytest.mark.parametrize(
    ("held", "required", "granted"),
    [
        (set(), (), True),
        ({"tasks:read"}, ("tasks:read",), True),
        ({"tasks:read"}, ("tasks:write",), False),
        ({"tasks:read"}, ("servers:admin", "tasks:read"), True),
        ({"admin"}, ("cloudflare:admin",), True),
        (set(), ("tasks:read",), False),
        ({"tasks:*"}, ("tasks:read",), False),
    ],
)
def test_grants(held: set[str], required: tuple[str, ...], granted: bool) -> None:
    assert grants(frozenset(held), required) is granted


def test_scope_catalogue() -> None:
    assert len(KNOWN) == 10
    assert Scope.ADMIN in KNOWN
    assert unknown(["tasks:read", "root", "admin"]) == ["root"]
