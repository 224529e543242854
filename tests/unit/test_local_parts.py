"""Pure parts of the local runtime: config, storage rules, migrations, meter, RPC cloning."""

import datetime as dt
from pathlib import Path

import pytest

from apiary_local.config import ConfigError, load, parse_dev_vars
from apiary_local.d1 import _statements, apply_migrations, connect
from apiary_local.meter import Meter
from apiary_local.objects import alarm_backoff_ms, clone, object_id
from apiary_local.storage import LocalObjectStorage
from ports import PortError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1", {"A": "1"}),
        ('A="x y"\n# c\n\nB=2', {"A": "x y", "B": "2"}),
        ("export A='q'", {"A": "q"}),
        ('A="l1\\nl2"', {"A": "l1\nl2"}),
        ("A=v # note", {"A": "v"}),
        ("A=", {"A": ""}),
        ('J="{"u": "a", "o": ["x"]}"', {"J": '{"u": "a", "o": ["x"]}'}),
        ('M="one\ntwo"\nB=2', {"M": "one\ntwo", "B": "2"}),
        ("A: colon", {"A": "colon"}),
    ],
)
def test_dev_vars(text: str, expected: dict[str, str]) -> None:
    assert parse_dev_vars(text) == expected


@pytest.mark.parametrize("text", ["NOEQUALS", "BAD KEY=1", "=1", "A=1\nstray"])
def test_dev_vars_errors(text: str) -> None:
    line = text.count("\n") + 1
    with pytest.raises(ConfigError, match=f"line {line}:"):
        parse_dev_vars(text)


def test_wrangler_toml_environments() -> None:
    dev = load(ROOT / "wrangler.toml")
    assert dev.vars["ENVIRONMENT"] == "development"
    assert [b.binding for b in dev.d1] == ["DB"]
    bindings = {(b.name, b.class_name) for b in dev.durable_objects}
    assert ("RATE_LIMITER", "RateLimiter") in bindings
    assert ("TASK_MANAGER", "TaskManager") in bindings
    assert {b.class_name for b in dev.durable_objects} == dev.sqlite_classes
    assert "*/5 * * * *" in dev.crons
    staging = load(ROOT / "wrangler.toml", "staging")
    assert staging.vars["ENVIRONMENT"] == "staging"
    assert staging.name == "apiary-staging"
    assert staging.crons != dev.crons
    with pytest.raises(ConfigError, match=r"no \[env\.qa\]"):
        load(ROOT / "wrangler.toml", "qa")


def test_migration_split_keeps_statements_whole() -> None:
    script = "-- c\nCREATE TABLE t (a TEXT DEFAULT ';');\nINSERT INTO t VALUES ('x;y');\n"
    assert _statements(script) == [
        "-- c\nCREATE TABLE t (a TEXT DEFAULT ';');",
        "INSERT INTO t VALUES ('x;y');",
    ]


def test_migrations_apply_once_and_roll_back_a_broken_one(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_a.sql").write_text("CREATE TABLE a (x INTEGER);")
    conn = connect(tmp_path / "db.sqlite")
    assert apply_migrations(conn, migrations) == ["0001_a.sql"]
    assert apply_migrations(conn, migrations) == []
    (migrations / "0002_b.sql").write_text(
        "CREATE TABLE b (x INTEGER);\nINSERT INTO nope VALUES (1);"
    )
    with pytest.raises(Exception, match="nope"):
        apply_migrations(conn, migrations)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "b" not in tables
    assert [r[0] for r in conn.execute("SELECT name FROM d1_migrations")] == ["0001_a.sql"]
    conn.close()


def test_object_storage_rules(tmp_path: Path) -> None:
    storage = LocalObjectStorage(tmp_path / "o.sqlite", Meter(), "T")
    storage.begin()
    storage.exec("CREATE TABLE t (x INTEGER)")
    for statement in ("BEGIN", "commit", "SAVEPOINT s", "ROLLBACK"):
        with pytest.raises(PortError, match="transaction"):
            storage.exec(statement)
    with pytest.raises(PortError, match="reserved"):
        storage.exec("SELECT * FROM __apiary_alarm")

    def fails() -> None:
        storage.exec("INSERT INTO t VALUES (1)")
        raise ValueError("undo")

    with pytest.raises(ValueError, match="undo"):
        storage.transaction(fails)
    assert storage.transaction(lambda: storage.exec("INSERT INTO t VALUES (2)")) == []
    storage.commit()
    assert storage.exec("SELECT x FROM t") == [{"x": 2}]
    storage.close()


def test_backoff_schedule() -> None:
    assert [alarm_backoff_ms(n) for n in range(6)] == [2000, 4000, 8000, 16000, 32000, 64000]


def test_object_ids_are_stable_and_distinct() -> None:
    assert object_id("A", "x") == object_id("A", "x")
    assert object_id("A", "x") != object_id("B", "x")
    assert len(object_id("A", "x")) == 64


@pytest.mark.parametrize("bad", [(1, 2), bytearray(b"x"), {1, 2}, object()])
def test_rpc_values_follow_cloudflare_rules(bad: object) -> None:
    with pytest.raises(TypeError, match="cannot be sent over RPC"):
        clone({"nested": [bad]})


def test_rpc_values_are_copied() -> None:
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    original = {"a": [1, {"b": None}], "t": when, "raw": b"x"}
    copied = clone(original)
    assert copied == original
    assert copied["a"] is not original["a"]


def test_meter_billing() -> None:
    meter = Meter()
    meter.count("do_requests", 3, object_class="X")
    meter.count("do_ws_messages", 41, object_class="X")
    meter.count("do_alarms", 2)
    snapshot = meter.snapshot()
    assert snapshot["billable"]["do_requests"] == 3 + 2 + 3  # 41 messages bill as 3 requests
    assert snapshot["objects"]["X"]["do_ws_messages"] == 41
    meter.reset()
    assert meter.snapshot()["totals"] == {}


def test_ids_sort_in_minting_order_within_a_millisecond() -> None:
    from ids import looks_like, new_id

    minted = [new_id(1_800_000_000_000, prefix="x_") for _ in range(500)]
    assert minted == sorted(minted)
    assert len(set(minted)) == 500
    assert all(looks_like(i, "x_") for i in minted)
    assert new_id(1_700_000_000_000) > minted[-1][2:]  # a clock that goes back keeps the order
    assert not looks_like("x_short", "x_")


def test_flush_makes_writes_visible_to_other_readers(tmp_path: Path) -> None:
    import asyncio
    import sqlite3

    storage = LocalObjectStorage(tmp_path / "o.sqlite", Meter(), "T")
    storage.begin()
    storage.exec("CREATE TABLE t (x INTEGER)")
    storage.exec("INSERT INTO t VALUES (1)")
    reader = sqlite3.connect(tmp_path / "o.sqlite")
    assert reader.execute("SELECT name FROM sqlite_master WHERE name = 't'").fetchall() == []
    asyncio.run(storage.flush())  # what the gate does before an outbound call
    assert reader.execute("SELECT x FROM t").fetchall() == [(1,)]
    reader.close()
    storage.close()


def test_socket_attachments_are_copies_within_the_size_limit() -> None:
    from apiary_local.sockets import MAX_ATTACHMENT_BYTES, LocalSocket, LocalSocketHub

    socket = LocalSocket(LocalSocketHub("o", lambda: None), ["device"])
    assert socket.attachment is None
    socket.attach({"dev": "d1", "held": {"c1": [5, None]}, "v": 3})
    read = socket.attachment
    assert read == {"dev": "d1", "held": {"c1": [5, None]}, "v": 3}
    read["v"] = 4  # as on Cloudflare (a structured clone), changing what was read changes
    read["held"]["c1"][0] = 6  # nothing stored, however deep
    read["held"]["c2"] = [7, None]
    assert socket.attachment == {"dev": "d1", "held": {"c1": [5, None]}, "v": 3}
    socket.attach({"dev": "d1"})
    assert socket.attachment == {"dev": "d1"}
    socket.attach(None)
    assert socket.attachment is None
    with pytest.raises(PortError, match="attachment"):
        socket.attach({"x": "y" * MAX_ATTACHMENT_BYTES})
