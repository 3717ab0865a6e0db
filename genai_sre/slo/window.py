"""Good/bad event counts in fixed time buckets, bounded by configuration.

`BucketRing` keeps `count` buckets of `width_s` seconds each in flat arrays.
Bucket `n` covers `[n * width_s, (n + 1) * width_s)`. The ring is contiguous up
to the newest bucket it has seen (older slots are cleared as time advances),
so a window sum is two C-level slice sums, whatever the traffic.

`EventWindows` pairs a fine ring (short windows, default 10 s buckets over
6 h) with a coarse ring (long windows and the period, default 5 min buckets),
so one SLO with a 30-day period holds 2160 + 8640 buckets: about 260 KB.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass

__all__ = ["BucketRing", "EventWindows", "WindowSettings"]


class BucketRing:
    def __init__(self, width_s: float, count: int) -> None:
        if width_s <= 0 or count <= 0:
            raise ValueError("bucket width and count must be positive")
        self.width_s = width_s
        self.count = count
        self.good = array("q", bytes(8 * count))
        self.bad = array("q", bytes(8 * count))
        self.last = -1  # newest bucket number seen; -1 = empty

    def _advance(self, n: int) -> None:
        if self.last < 0 or n - self.last >= self.count:
            for arr in (self.good, self.bad):
                arr[:] = array("q", bytes(8 * self.count))
        else:
            for m in range(self.last + 1, n + 1):
                slot = m % self.count
                self.good[slot] = 0
                self.bad[slot] = 0
        self.last = n

    def add(self, t: float, good: int, bad: int) -> bool:
        """Count events at time `t`; False when `t` is older than the ring holds."""
        n = int(t // self.width_s)
        if n > self.last:
            self._advance(n)
        elif n <= self.last - self.count:
            return False
        slot = n % self.count
        self.good[slot] += good
        self.bad[slot] += bad
        return True

    def totals(self, now: float, window_s: float) -> tuple[int, int]:
        """(good, bad) in the buckets from the one holding `now - window` to the one holding `now`.

        When `now` and the window are whole buckets this is exactly the events in `[now - window, now)`;
        otherwise the first bucket may add up to one bucket of older events.
        """
        if self.last < 0:
            return 0, 0
        n_now = int(now // self.width_s)
        first = math.floor((now - window_s) / self.width_s + 1e-9)
        hi = min(n_now, self.last)  # buckets after `last` are empty
        lo = max(first, n_now - self.count + 1, self.last - self.count + 1)
        if hi < lo:
            return 0, 0
        return self._sum(self.good, lo, hi), self._sum(self.bad, lo, hi)

    def _sum(self, arr: array[int], lo: int, hi: int) -> int:
        a, b = lo % self.count, hi % self.count
        if a <= b and hi - lo < self.count:
            return sum(arr[a : b + 1])
        return sum(arr[a:]) + sum(arr[: b + 1])

    def to_bytes(self) -> bytes:
        return self.good.tobytes() + self.bad.tobytes()

    def load(self, last: int, blob: bytes) -> None:
        """Restore from `to_bytes()` taken with the same width and count."""
        if len(blob) != 16 * self.count:
            raise ValueError("snapshot does not match the configured bucket count")
        half = 8 * self.count
        self.good = array("q")
        self.good.frombytes(blob[:half])
        self.bad = array("q")
        self.bad.frombytes(blob[half:])
        self.last = last


@dataclass(frozen=True)
class WindowSettings:
    """Bucket sizes: windows up to `fine_span_s` read the fine ring, longer ones the coarse ring."""

    fine_bucket_s: float = 10.0
    fine_span_s: float = 6 * 3600.0
    coarse_bucket_s: float = 300.0

    def __post_init__(self) -> None:
        if self.fine_bucket_s <= 0 or self.coarse_bucket_s <= 0 or self.fine_span_s < self.fine_bucket_s:
            raise ValueError("bucket sizes must be positive and fine_span_s at least one fine bucket")


class EventWindows:
    """The counts of one SLO. Memory: (fine_span / fine_bucket + longest / coarse_bucket) buckets."""

    def __init__(self, longest_s: float, settings: WindowSettings | None = None) -> None:
        self.settings = settings or WindowSettings()
        s = self.settings
        self.fine = BucketRing(s.fine_bucket_s, math.ceil(s.fine_span_s / s.fine_bucket_s) + 1)
        self.coarse = BucketRing(s.coarse_bucket_s, math.ceil(longest_s / s.coarse_bucket_s) + 1)

    def add(self, t: float, good: int, bad: int) -> None:
        self.fine.add(t, good, bad)
        self.coarse.add(t, good, bad)

    def counts(self, now: float, window_s: float) -> tuple[int, int]:
        """(bad, total) over the window ending at `now`."""
        ring = self.fine if window_s <= self.settings.fine_span_s + 1e-9 else self.coarse
        good, bad = ring.totals(now, window_s)
        return bad, good + bad
