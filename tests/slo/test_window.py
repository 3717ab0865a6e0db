from __future__ import annotations

import pytest

from genai_sre.slo.window import BucketRing, EventWindows, WindowSettings


def test_ring_sums_whole_buckets_and_forgets_old_ones() -> None:
    ring = BucketRing(10.0, 6)
    for t in range(0, 60, 5):  # two events per 10 s bucket
        ring.add(t, 1, 0)
    assert ring.totals(59.0, 60.0) == (12, 0)
    assert ring.totals(59.0, 20.0) == (6, 0)  # buckets 30-60 (the one holding 59 - 20 = 39 included)
    ring.add(65.0, 0, 3)  # bucket 6 reuses bucket 0's slot
    assert ring.totals(65.0, 60.0) == (10, 3)
    assert ring.totals(200.0, 60.0) == (0, 0)  # everything older than the ring
    assert not ring.add(0.0, 1, 0)  # too old to count


def test_ring_survives_long_gaps_and_restores_from_bytes() -> None:
    ring = BucketRing(1.0, 4)
    ring.add(1.0, 1, 1)
    ring.add(1000.0, 2, 0)
    assert ring.totals(1000.0, 4.0) == (2, 0)
    copy = BucketRing(1.0, 4)
    copy.load(ring.last, ring.to_bytes())
    assert copy.totals(1000.0, 4.0) == (2, 0)
    with pytest.raises(ValueError):
        BucketRing(1.0, 5).load(ring.last, ring.to_bytes())


def test_memory_is_bounded_by_configuration_not_traffic() -> None:
    w = EventWindows(30 * 86400, WindowSettings(fine_bucket_s=10, fine_span_s=6 * 3600, coarse_bucket_s=300))
    assert (w.fine.count, w.coarse.count) == (2161, 8641)
    for i in range(50_000):
        w.add(1_000_000 + i * 0.5, 1 - i % 2, i % 2)
    assert w.fine.count == 2161 and len(w.fine.good) == 2161 and len(w.coarse.bad) == 8641
    bad, total = w.counts(1_000_000 + 25_000, 3600)
    assert total == 7200 and bad == 3600
    bad, total = w.counts(1_000_000 + 25_000, 30 * 86400)  # the coarse ring
    assert total == 50_000
