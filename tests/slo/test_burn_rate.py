from __future__ import annotations

import pytest

from genai_sre.slo.burn_rate import Condition, budget_remaining, burn_rate, conditions, error_ratio, firing, holds
from genai_sre.slo.spec import AlertWindows

H = 3600.0
PAGE = Condition("page", H, 300.0, 14.4)


@pytest.mark.parametrize(
    ("bad", "total", "ratio", "burn"),
    [(1, 1000, 0.001, 1.0), (2, 1000, 0.002, 2.0), (10, 1000, 0.01, 10.0), (0, 0, None, None), (0, 10, 0.0, 0.0)],
)
def test_ratio_and_burn_rate(bad: int, total: int, ratio: float | None, burn: float | None) -> None:
    assert error_ratio(bad, total) == ratio
    assert burn_rate(bad, total, 0.001) == (None if burn is None else pytest.approx(burn))


def test_budget_remaining() -> None:
    assert budget_remaining(0.0005, 0.001) == pytest.approx(0.5)
    assert budget_remaining(0.002, 0.001) == pytest.approx(-1.0)
    assert budget_remaining(None, 0.001) is None


def test_workbook_catalog_for_30_days() -> None:
    conds = conditions(AlertWindows(), 30 * 86400)
    assert [(c.severity, c.long_s / H, c.short_s / 60, c.factor) for c in conds] == [
        ("page", 1, 5, 14.4), ("page", 6, 30, 6.0), ("ticket", 24, 120, 3.0), ("ticket", 72, 360, 1.0),
    ]


@pytest.mark.parametrize(
    ("short", "long", "min_events", "fires"),
    [
        ((100, 1000), (150, 10000), 20, True),  # 10% and 1.5% > 1.44%
        ((100, 1000), (140, 10000), 20, False),  # long window 1.4% < 1.44%
        ((0, 1000), (150, 10000), 20, False),  # short window reset: no page
        ((5, 10), (150, 10000), 20, False),  # short window below the minimum count
        ((5, 10), (150, 10000), 0, True),
        ((0, 0), (0, 0), 0, False),  # no traffic is never an error
    ],
)
def test_multiwindow_condition(short: tuple[int, int], long: tuple[int, int], min_events: int, fires: bool) -> None:
    counts = {300.0: short, H: long}
    assert holds(PAGE, counts, 0.001, min_events) is fires
    assert ("page" in firing((PAGE,), counts, 0.001, min_events)) is fires
