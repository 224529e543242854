"""The swarm protocol's parser: every frame is a message or a ProtocolError, nothing else."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarms import credentials
from swarms.protocol import CLIENT_MESSAGES, MAX_FRAME_BYTES, ProtocolError, parse

VALID = {
    "JOIN": {"invite_token": "x" * 20},
    "RESUME": {"device_id": "dev_1", "ts": 1, "nonce": "n" * 12, "signature": "a" * 64},
    "DEVICE_REGISTER": {
        "name": "laptop",
        "capabilities": {"cpuCores": 8, "memoryGB": 16, "gpuAvailable": True, "gpuName": "X"},
    },
    "BENCHMARK_RESULT": {"score": 120.5},
    "JOB_PROGRESS": {"chunkId": "job_1.3", "pct": 50},
    "JOB_COMPLETE": {"chunkId": "job_1.3", "result": {"any": [1, 2]}, "durationMs": 12},
    "SYNC": {"version": 3},
}


def test_every_client_message_has_a_valid_example() -> None:
    assert set(VALID) == set(CLIENT_MESSAGES)


@pytest.mark.parametrize("kind", sorted(VALID))
def test_valid_messages_parse(kind: str) -> None:
    parsed_kind, data = parse(json.dumps({"type": kind, "data": VALID[kind]}))
    assert parsed_kind == kind
    assert isinstance(data, CLIENT_MESSAGES[kind])


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "bad_json"),
        (b"\x00\x01", "bad_json"),
        ("[1, 2]", "invalid"),
        ('{"type": "JOIN"}', "invalid"),  # data missing: JOIN needs a token
        ('{"type": "NOPE", "data": {}}', "unknown_type"),
        ('{"type": "JOIN", "data": {"invite_token": 5}}', "invalid"),
        ('{"type": "JOIN", "data": {"invite_token": "x", "extra": 1}}', "invalid"),
        ('{"type": "BENCHMARK_RESULT", "data": {"score": -1}}', "invalid"),
        ('{"type": "JOB_PROGRESS", "data": {"chunkId": "a b", "pct": 5}}', "invalid"),
        (json.dumps({"type": "RESUME", "data": {**VALID["RESUME"], "signature": "z"}}), "invalid"),
        ('{"type": "SYNC", "data": {}, "more": 1}', "invalid"),
        ("[" * 100_000 + "]" * 100_000, "too_large"),
        (
            '{"type": "JOIN", "data": {"invite_token": "' + "x" * MAX_FRAME_BYTES + '"}}',
            "too_large",
        ),
        ("[" * 30_000 + "]" * 30_000, "bad_json"),  # nesting past the parser's depth
    ],
)
def test_bad_frames_are_protocol_errors(raw: str | bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse(raw)
    assert caught.value.code == code


leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
kinds = st.sampled_from([*CLIENT_MESSAGES, "", "ping", "STATE"]) | st.text(max_size=10)
ERROR_CODES = {"bad_json", "unknown_type", "invalid", "too_large"}


def outcome(raw: str | bytes) -> str:
    """The parsed type, or `error:<code>`; anything else escaping fails the test."""
    try:
        kind, data = parse(raw)
    except ProtocolError as exc:
        return f"error:{exc.code}"
    assert isinstance(data, CLIENT_MESSAGES[kind])
    return kind


@settings(max_examples=3000, deadline=None)
@given(kind=kinds, data=json_values)
def test_fuzzed_envelopes_never_escape(kind: str, data: object) -> None:
    result = outcome(json.dumps({"type": kind, "data": data}))
    assert result in CLIENT_MESSAGES or result.removeprefix("error:") in ERROR_CODES


@settings(max_examples=2000, deadline=None)
@given(raw=st.text(max_size=200) | st.binary(max_size=200))
def test_fuzzed_bytes_never_escape(raw: str | bytes) -> None:
    assert outcome(raw).removeprefix("error:") in ERROR_CODES | set(CLIENT_MESSAGES)


def test_resume_signatures() -> None:
    secret = credentials.new_token()
    signature = credentials.sign(secret, "dev_1", 1_000, "nonce-123")
    assert credentials.check_resume(secret, "dev_1", 1_000, "nonce-123", signature, 1_500) is None
    assert credentials.check_resume(secret, "dev_1", 1_000, "nonce-124", signature, 1_500) == (
        "bad signature"
    )
    assert credentials.check_resume("other", "dev_1", 1_000, "nonce-123", signature, 1_500) == (
        "bad signature"
    )
    late = 1_000 + credentials.MAX_SKEW_MS + 1
    assert credentials.check_resume(secret, "dev_1", 1_000, "nonce-123", signature, late) == (
        "stale timestamp"
    )
    assert credentials.digest("t") == credentials.digest("t") != credentials.digest("u")
