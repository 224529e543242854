"""The local account's decisions, as pure functions: addressing, version choice, deployment and
upload checks, bindings, the local-only guard, and GraphQL over a real invocation log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apiary_local import local_guard
from apiary_local.account import bindings, routing, uploads
from apiary_local.account.envelope import ApiError
from apiary_local.account.graphql_api import Analytics, quantile
from apiary_local.account.invocations import Invocation, InvocationLog
from apiary_local.account.service import check_deployment


@pytest.mark.parametrize(
    ("host", "script"),
    [
        ("hello.localhost:8787", "hello"),
        ("hello.localhost", "hello"),
        ("acme.dispatcher.localhost:8787", "dispatcher"),
        ("hello.local.workers.dev", "hello"),
        ("HELLO.LOCALHOST", "hello"),
        ("localhost:8787", None),
        ("127.0.0.1:8787", None),
        ("[::1]:8787", None),
        ("hello.other.workers.dev", None),
        ("example.com", None),
    ],
)
def test_a_worker_is_addressed_by_host(host: str, script: str | None) -> None:
    assert routing.script_of_host(host, "local") == script


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('greeter="v-2"', {"greeter": "v-2"}),
        ('a="1", b="2"', {"a": "1", "b": "2"}),
        ("greeter=v-2", {}),  # a token, not a String
        ("not a dictionary ###", {}),
        (None, {}),
    ],
)
def test_version_overrides_are_an_rfc8941_dictionary(
    header: str | None, expected: dict[str, str]
) -> None:
    assert routing.parse_overrides(header) == expected


def test_the_split_follows_the_percentages_and_an_override_wins() -> None:
    versions = [("a", 25.0), ("b", 75.0)]
    picks = [routing.pick_version(versions, override=None, draw=d / 10) for d in range(1000)]
    assert picks.count("a") == 250
    assert routing.pick_version(versions, override="a", draw=99.9) == "a"
    assert routing.pick_version(versions, override="elsewhere", draw=0.0) == "a"
    assert routing.pick_version([("only", 100.0)], override=None, draw=99.999) == "only"


@pytest.mark.parametrize(
    ("versions", "message"),
    [
        ([], "one or two"),
        ([{"version_id": "a", "percentage": 60}], "sum to 60"),
        ([{"version_id": "a", "percentage": 50}, {"version_id": "a", "percentage": 50}], "twice"),
        ([{"version_id": "a", "percentage": 101}], "from 0 to 100"),
        ([{"version_id": "a"}], "needs version_id and percentage"),
        ([{"version_id": str(i), "percentage": 25} for i in range(4)], "one or two"),
    ],
)
def test_bad_deployments_are_refused(versions: Any, message: str) -> None:
    with pytest.raises(ApiError) as refused:
        check_deployment(versions)
    assert refused.value.status == 400
    assert message in refused.value.message


def test_a_good_deployment_is_kept_as_given() -> None:
    given = [{"version_id": "a", "percentage": 10}, {"version_id": "b", "percentage": 90.0}]
    assert check_deployment(given) == [
        {"version_id": "a", "percentage": 10.0},
        {"version_id": "b", "percentage": 90.0},
    ]


def test_bindings_are_checked_by_type() -> None:
    ok = [
        {"type": "plain_text", "name": "A", "text": "x"},
        {"type": "dispatch_namespace", "name": "D", "namespace": "n"},
    ]
    assert bindings.check(ok, runnable=True) == ok
    for bad, message in [
        ([{"type": "teleporter", "name": "T"}], "unknown type"),
        ([{"type": "d1", "name": "DB", "id": "x"}], "cannot be honoured"),
        ([{"type": "plain_text", "name": "A"}], "needs text"),
        ([{"type": "plain_text", "name": "1bad", "text": ""}], "identifier"),
        ([ok[0], ok[0]], "defined twice"),
    ]:
        with pytest.raises(ApiError, match=message):
            bindings.check(bad, runnable=True)
    # A Worker that will not run here may keep bindings this machine cannot honour.
    assert bindings.check([{"type": "d1", "name": "DB", "id": "x"}], runnable=False)


def test_inherited_and_kept_bindings_come_from_the_version_before() -> None:
    before = [
        {"type": "secret_text", "name": "KEY", "text": "s"},
        {"type": "plain_text", "name": "OLD", "text": "o"},
    ]
    given = [{"type": "inherit", "name": "KEY"}, {"type": "plain_text", "name": "NEW", "text": "n"}]
    assert bindings.resolve(given, before, keep_types=None, strict=True) == [
        before[0],
        given[1],
    ]
    kept = bindings.resolve(given[1:], before, keep_types=["secret_text"], strict=True)
    assert [b["name"] for b in kept] == ["NEW", "KEY"]
    with pytest.raises(ApiError, match="inherits from nothing"):
        bindings.resolve(
            [{"type": "inherit", "name": "NONE"}], before, keep_types=None, strict=True
        )
    assert bindings.public(before[0]) == {"name": "KEY", "type": "secret_text"}


def _multipart(meta: Any, parts: list[tuple[str, str, bytes]]) -> tuple[str, bytes]:
    chunks = [b'--b\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n']
    chunks.append(json.dumps(meta).encode() + b"\r\n")
    for name, kind, content in parts:
        chunks.append(
            f'--b\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            f"Content-Type: {kind}\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    chunks.append(b"--b--\r\n")
    return "multipart/form-data; boundary=b", b"".join(chunks)


MODULE = "application/javascript+module"


def test_uploads_are_keyed_by_filename_and_checked() -> None:
    upload = uploads.parse(*_multipart({"main_module": "a.js"}, [("a.js", MODULE, b"x")]))
    assert upload.modules == (uploads.Module("a.js", MODULE, b"x"),)
    assert uploads.check(upload) == uploads.Runnability(True)
    for meta, parts, message in [
        ({}, [("a.js", MODULE, b"x")], "main_module"),
        ({"main_module": "b.js"}, [("a.js", MODULE, b"x")], "not among"),
        ({"main_module": "a.js"}, [("a.js", "text/html", b"x")], "content type"),
        ({"main_module": "../a.js"}, [("../a.js", MODULE, b"x")], "relative path"),
        ({"main_module": "a.js", "compatibility_date": "soon"}, [("a.js", MODULE, b"")], "YYYY"),
    ]:
        with pytest.raises(ApiError, match=message):
            uploads.check(uploads.parse(*_multipart(meta, parts)))
    with pytest.raises(ApiError, match="metadata part"):
        uploads.parse("multipart/form-data; boundary=b", b"--b--\r\n")
    python = uploads.parse(*_multipart({"main_module": "w.py"}, [("w.py", "text/x-python", b"")]))
    assert "Python Workers cannot run locally" in str(uploads.check(python).reason)


def test_the_guard_knows_loopback_hosts_and_this_servers_origin() -> None:
    def scope(**headers: str) -> dict[str, Any]:
        return {"headers": [(k.encode(), v.encode()) for k, v in headers.items()]}

    for host in ("127.0.0.1:8787", "localhost", "[::1]:9"):
        assert local_guard.loopback_host(scope(host=host))
    for host in ("evil.example", "127.0.0.1.evil.example", "hello.localhost"):
        assert not local_guard.loopback_host(scope(host=host))
    assert local_guard.own_origin(scope(), 8787)
    assert local_guard.own_origin(scope(origin="http://localhost:8787"), 8787)
    assert local_guard.own_origin(scope(origin="http://[::1]:8787"), 8787)
    for origin in ("http://localhost:8788", "https://127.0.0.1:8787", "http://evil.example:8787"):
        assert not local_guard.own_origin(scope(origin=origin), 8787)


@pytest.fixture
def analytics(tmp_path: Path) -> Iterator[Analytics]:
    log = InvocationLog(tmp_path / "invocations.sqlite", now_ms=1_800_000_000_000)
    base = 1_800_000_000_000  # 2027-01-15T08:00:00Z
    for i, (version, status, ms) in enumerate(
        [("v1", "success", 1.0), ("v1", "success", 3.0), ("v2", "scriptThrewException", 2.0)]
        + [("v2", "success", 4.0)] * 2
    ):
        log.record(Invocation(f"r{i}", "", "w", version, base + i, ms, status, 200))
    log.record(Invocation("late", "", "w", "v1", base + 3_600_000, 5.0, "success", 200))
    log.attach([{"ray": "r0", "subrequests": 2, "logs": [], "exception": None}])
    yield Analytics(log, "acct")
    log.close()


QUERY = """query($a: string, $since: string) { viewer { accounts(filter: {accountTag: $a}) {
  workersInvocationsAdaptive(limit: 10, filter: {scriptName: "w", datetime_geq: $since,
      datetime_leq: "2027-01-15T08:00:00Z"}, orderBy: [scriptVersion_ASC]) {
    sum { requests errors subrequests } quantiles { cpuTimeP50 cpuTimeP99 }
    dimensions { scriptVersion } } } } }"""


def test_graphql_counts_recorded_invocations(analytics: Analytics) -> None:
    answer = analytics.run(QUERY, {"a": "acct", "since": "2027-01-15T08:00:00Z"}, None)
    assert answer["errors"] is None
    groups = answer["data"]["viewer"]["accounts"][0]["workersInvocationsAdaptive"]
    assert [(g["dimensions"]["scriptVersion"], g["sum"]) for g in groups] == [
        ("v1", {"requests": 2, "errors": 0, "subrequests": 2}),
        ("v2", {"requests": 3, "errors": 1, "subrequests": 0}),
    ]
    assert groups[0]["quantiles"] == {"cpuTimeP50": 2000.0, "cpuTimeP99": 2980.0}
    assert "wall time" in answer["extensions"]["apiary"]


def test_graphql_sums_cpu_time_as_wall_time_and_says_so(analytics: Analytics) -> None:
    query = QUERY.replace("quantiles { cpuTimeP50 cpuTimeP99 }", "").replace(
        "subrequests", "cpuTimeUs"
    )
    answer = analytics.run(query, {"a": "acct", "since": "2027-01-15T08:00:00Z"}, None)
    groups = answer["data"]["viewer"]["accounts"][0]["workersInvocationsAdaptive"]
    assert groups[0]["sum"]["cpuTimeUs"] == 4000  # v1: its two wall times, in µs
    assert "cpuTimeUs" in answer["extensions"]["apiary"]


def test_graphql_refuses_what_it_does_not_have(analytics: Analytics) -> None:
    unknown = analytics.run(QUERY.replace("subrequests", "clientDisconnects"), {"a": "acct"}, None)
    assert unknown["data"] is None
    assert "clientDisconnects" in unknown["errors"][0]["message"]
    other = analytics.run(QUERY, {"a": "someone-else", "since": "2027-01-01T00:00:00Z"}, None)
    assert "not authorized" in other["errors"][0]["message"]
    bad_time = analytics.run(QUERY, {"a": "acct", "since": "yesterday"}, None)
    assert "RFC 3339" in bad_time["errors"][0]["message"]
    assert analytics.run("{ nope }", None, None)["errors"]


def test_quantiles_interpolate_between_ranks() -> None:
    assert quantile([1.0], 0.99) == 1.0
    assert quantile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert quantile([1.0, 2.0], 0.99) == pytest.approx(1.99)
