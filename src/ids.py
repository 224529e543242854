"""Opaque ids that sort by creation time (ULID layout: 48-bit ms time + 80 random bits).

Monotonic within a process (the ULID spec's monotonic mode): an id minted in the same
millisecond as the previous one, or with a clock that went back, increments the previous one,
so ids minted in sequence sort in sequence.
"""

import secrets

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
_last = 0


def new_id(now_ms: int, *, prefix: str = "") -> str:
    global _last
    value = (now_ms & ((1 << 48) - 1)) << 80 | secrets.randbits(80)
    if value >> 80 <= _last >> 80:
        value = _last + 1
    _last = value
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return prefix + "".join(reversed(chars))


def looks_like(value: str, prefix: str) -> bool:
    """Could `value` be an id minted with `prefix`? (Checked before waking an object.)"""
    body = value.removeprefix(prefix)
    return value.startswith(prefix) and len(body) == 26 and all(c in _ALPHABET for c in body)
