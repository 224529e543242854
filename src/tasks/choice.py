"""Which server gets a task: a pure function of the candidates.

Eligible: `healthy`, has every required capability, below capacity, not excluded (a server
that just failed the task, unless it is the only one). Best: lowest assigned/capacity; ties go
to the server assigned least recently (fair rotation), then by id for determinism.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Candidate:
    id: str
    status: str
    capabilities: frozenset[str]
    capacity: int
    assigned: int
    last_assigned_ms: int = 0


def choose_server(
    candidates: Iterable[Candidate],
    required: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> Candidate | None:
    needs = frozenset(required)
    eligible = [
        c
        for c in candidates
        if c.status == "healthy" and needs <= c.capabilities and c.assigned < c.capacity
    ]
    preferred = [c for c in eligible if c.id not in exclude] or eligible
    if not preferred:
        return None
    return min(preferred, key=lambda c: (c.assigned / c.capacity, c.last_assigned_ms, c.id))
