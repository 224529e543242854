"""What a swarm keeps in memory between writes: the backlog of chunks waiting for a device,
batched bookkeeping, and which STATE a broadcast sends each socket. No I/O."""

import pytest

from swarms.backlog import PAGE, Backlog
from swarms.bookkeeping import DEVICE_FLUSH_MS, Bookkeeping
from swarms.views import FULL_AFTER, since


class Rows:
    """Pending chunk rows of one job, as the store answers them; counts the reads."""

    def __init__(self, pending: list[int]) -> None:
        self.pending = pending
        self.reads = 0

    def __call__(self, job_id: str, from_idx: int, limit: int) -> list[dict]:
        self.reads += 1
        found = [i for i in self.pending if i >= from_idx][:limit]
        return [{"id": f"{job_id}.{i}", "idx": i} for i in found]


def test_the_backlog_hands_out_in_order_skipping_chunks_in_flight() -> None:
    rows = Rows(list(range(200)))
    backlog = Backlog(rows)
    held = {"j.0", "j.2"}  # held by connections the backlog did not hand them to
    assert backlog.take("j", 3, held) == ["j.1", "j.3", "j.4"]
    assert backlog.take("j", 2, held) == ["j.5", "j.6"]
    assert rows.reads == 1  # a page at a time
    backlog.give_back("j.3")  # let go: goes first, before what was never handed out
    backlog.give_back("j.1")
    assert backlog.take("j", 3, held) == ["j.1", "j.3", "j.7"]
    backlog.give_back("j.150")  # not read yet: its row will be
    taken = backlog.take("j", 500, held)
    assert taken == [f"j.{i}" for i in range(8, 200)]
    assert backlog.take("j", 5, held) == []
    reads = rows.reads
    assert backlog.take("j", 5, held) == []
    assert rows.reads == reads  # nothing left to read: no more reads
    backlog.reset()  # read again from the rows: what is pending there and not held
    assert backlog.take("j", 5, {"j.0"}) == ["j.1", "j.2", "j.3", "j.4", "j.5"]


def test_a_full_page_of_chunks_in_flight_is_read_past() -> None:
    backlog = Backlog(Rows(list(range(PAGE + 1))))
    held = {f"j.{i}" for i in range(PAGE)}
    assert backlog.take("j", 1, held) == [f"j.{PAGE}"]


def test_device_statistics_wait_for_a_batch_or_for_an_idle_moment() -> None:
    books = Bookkeeping()
    assert not books.devices_due(0, in_flight=False)
    books.note_device("d", 1_000, quota=3, ms_per_chunk=40.0)
    books.note_device("d", 1_500, quota=4)
    assert books.overlay_device({"id": "d", "quota": 2, "name": "x"}) == {
        "id": "d", "quota": 4, "name": "x", "ms_per_chunk": 40.0}  # fmt: skip
    assert not books.devices_due(1_000 + DEVICE_FLUSH_MS - 1, in_flight=True)
    assert books.devices_due(1_000 + DEVICE_FLUSH_MS, in_flight=True)
    assert books.devices_due(1_001, in_flight=False)  # nothing in flight: now
    assert books.devices_due_at() == 1_000 + DEVICE_FLUSH_MS
    assert books.take_device("d") == {"quota": 4, "ms_per_chunk": 40.0}
    assert books.devices_due_at() is None


def test_job_counts_add_up_until_written() -> None:
    books = Bookkeeping()
    for column in ("done", "done", "failed"):
        books.count("j", column)
    row = {"id": "j", "done": 10, "failed": 1, "total": 20}
    assert books.overlay_job(row) == {"id": "j", "done": 12, "failed": 2, "total": 20}
    assert books.take_jobs() == {"j": {"done": 2, "failed": 1}}
    assert books.overlay_job(row) == row


@pytest.mark.parametrize(
    ("socket_v", "broadcast_v", "version", "expected"),
    [
        (3, 7, 9, 7),  # joined before the last broadcast: was sent it
        (8, 7, 9, 8),  # sent a newer version itself (joined, SYNC) after it
        (9, 7, 9, 9),  # has this version: nothing to send
        (None, 7, 9, None),  # never sent anything: the full state
        (1, 1, FULL_AFTER + 2, None),  # too far behind: the full state
    ],
)
def test_what_a_broadcast_sends_each_socket(
    socket_v: int | None, broadcast_v: int, version: int, expected: int | None
) -> None:
    assert since(socket_v, broadcast_v, version) == expected
