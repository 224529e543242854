"""auth.tokens: strict HS256 JWTs; auth.scopes: what a token's scopes grant."""

import base64
import json

import pytest

from auth.scopes import KNOWN, Scope, grants, unknown
from auth.tokens import (
    OPERATOR_AUDIENCE,
    SERVER_AUDIENCE,
    InvalidToken,
    decode,
    encode,
    mint,
)

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
    assert claims.audience == OPERATOR_AUDIENCE


def claims(**extra: object) -> dict[str, object]:
    return {"sub": "x", "aud": OPERATOR_AUDIENCE, "exp": NOW + 9, **extra}


def _signed(header: dict, body: dict) -> str:
    good = encode(body, SECRET).split(".")
    return f"{b64(header)}.{good[1]}.{good[2]}"


def _with_payload(raw: bytes) -> str:
    """A token whose payload segment is `raw`, correctly signed (so only parsing can fail)."""
    import hashlib
    import hmac

    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64(raw)}"
    signature = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


GOOD = encode(claims(), SECRET)
OTHER_SECRET = "wrong-secret-wrong-secret-wrong-secret"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "malformed"),
        ("a.b", "malformed"),
        ("a.b.c.d", "malformed"),
        ("!!.??.**", "malformed"),
        (f"{b64([1])}.{b64({})}.x", "malformed"),
        (f"{b64({'alg': 'none'})}.{b64(claims())}.", "malformed"),
        (f"{b64({'alg': 'none'})}.{b64(claims())}.e30", "algorithm"),
        (_signed({"alg": "HS512"}, claims()), "algorithm"),
        (_signed({"alg": "RS256"}, claims()), "algorithm"),
        (_signed({"typ": "JWT"}, claims()), "algorithm"),
        (encode(claims(), OTHER_SECRET), "signature"),
        (encode({"sub": "x", "aud": OPERATOR_AUDIENCE}, SECRET), "expiry"),
        (encode(claims(exp="tomorrow"), SECRET), "number"),
        (encode(claims(exp=True), SECRET), "number"),
        (encode(claims(exp=1e300), SECRET), "out of range"),
        (encode(claims(exp=float("inf")), SECRET), "out of range"),
        (encode(claims(exp=NOW - 31), SECRET), "expired"),
        (encode(claims(exp=NOW + 60, nbf=NOW + 90), SECRET), "not yet"),
        (encode({"aud": OPERATOR_AUDIENCE, "exp": NOW + 60}, SECRET), "subject"),
        (encode({"sub": "x", "exp": NOW + 60}, SECRET), "audience"),
        (encode(claims(aud=SERVER_AUDIENCE), SECRET), "audience"),
        (encode(claims(scope=["admin"]), SECRET), "scope"),
        (GOOD + "=", "malformed"),
        # Base64 decoders skip characters outside the alphabet: without a check of each
        # segment, these would all verify as GOOD.
        (GOOD[:-4] + "!" + GOOD[-4:], "malformed"),
        (GOOD.replace(".", ".%", 1), "malformed"),
        (GOOD[:-2] + "\n" + GOOD[-2:], "malformed"),
        (_with_payload(b'{"sub": "\xff", "aud": "apiary", "exp": 1800000009}'), "malformed"),
        (_with_payload(b"\xff\xfe not json"), "malformed"),
    ],
)
def test_rejections(token: str, reason: str) -> None:
    with pytest.raises(InvalidToken, match=reason):
        decode(token, SECRET, now_s=NOW)


def test_audiences_keep_servers_and_operators_apart() -> None:
    server = mint(
        subject="server:srv_1", scopes=[], now_s=NOW, ttl_s=60, secret=SECRET,
        audience=SERVER_AUDIENCE, extra={"server_id": "srv_1"},
    )  # fmt: skip
    operator = mint(subject="ops", scopes=["admin"], now_s=NOW, ttl_s=60, secret=SECRET)
    with pytest.raises(InvalidToken, match="audience"):
        decode(server, SECRET, now_s=NOW)  # an operator route
    with pytest.raises(InvalidToken, match="audience"):
        decode(operator, SECRET, now_s=NOW, audiences=(SERVER_AUDIENCE,))
    both = (OPERATOR_AUDIENCE, SERVER_AUDIENCE)
    assert decode(server, SECRET, now_s=NOW, audiences=both).audience == SERVER_AUDIENCE


def test_signature_covers_claims() -> None:
    header, _, signature = encode(claims(scope="tasks:read"), SECRET).split(".")
    forged = f"{header}.{b64(claims(scope='admin'))}.{signature}"
    with pytest.raises(InvalidToken, match="signature"):
        decode(forged, SECRET, now_s=NOW)


def test_a_short_or_missing_secret_verifies_nothing() -> None:
    with pytest.raises(InvalidToken, match="not configured"):
        decode(GOOD, "", now_s=NOW)
    with pytest.raises(InvalidToken, match="not configured"):
        decode(GOOD, "short-secret", now_s=NOW)
    with pytest.raises(ValueError, match="32 bytes"):
        encode(claims(), "short-secret")


def test_clock_skew_leeway() -> None:
    token = encode(claims(exp=NOW), SECRET)
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
