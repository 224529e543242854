"""When to try a dispatch again, and whether to: pure functions of the outcome."""

import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class Backoff:
    base_ms: int = 500
    cap_ms: int = 30_000

    def delay_ms(self, tries: int, *, rand: float | None = None) -> int:
        """Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2**tries)].

        Never under a quarter of the step, so a retry is not immediate.
        """
        step: int = min(self.cap_ms, self.base_ms * 2**tries)  # typeshed: int ** int is Any
        r = random.random() if rand is None else rand
        return max(step // 4, int(step * r))


def should_retry(status: int | None) -> bool:
    """None means no HTTP answer (network error or timeout)."""
    return status is None or status >= 500 or status in RETRYABLE_STATUSES


def retry_after_ms(header: str | None, now_ms: int) -> int | None:
    """`Retry-After` as delay-seconds or an HTTP date, in milliseconds from now."""
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        return int(header) * 1000
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0, int(when.timestamp() * 1000) - now_ms)


def next_delay_ms(
    tries: int, status: int | None, retry_after: str | None, now_ms: int, policy: Backoff
) -> int:
    """The wait before try `tries + 1`: the server's Retry-After when given (capped)."""
    asked = retry_after_ms(retry_after, now_ms)
    if asked is not None:
        return min(asked, policy.cap_ms * 4)
    return policy.delay_ms(tries)
