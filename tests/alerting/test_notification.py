from __future__ import annotations

import pytest

from genai_sre.alerting.matchers import parse_matcher
from genai_sre.alerting.notification import Notification, format_time, parse_fraction, parse_time
from genai_sre.errors import ConfigError


def test_times() -> None:
    assert parse_time("0001-01-01T00:00:00Z") is None and parse_time("") is None
    assert parse_time("2026-11-26T04:36:13Z") == 1795667773.0
    assert parse_time("2026-11-26T04:36:13.123456789Z") == pytest.approx(1795667773.123456789)
    assert parse_time("2026-11-26T05:36:13+01:00") == 1795667773.0
    assert format_time(1795667773.5) == "2026-11-26T04:36:13.500Z"
    assert format_time(None) == "0001-01-01T00:00:00Z"
    with pytest.raises(ValueError):
        parse_time("yesterday")


@pytest.mark.parametrize(("text", "value"), [("0.8", 0.8), ("80%", 0.8), ("-5%", -0.05), ("", None), ("x", None)])
def test_fractions(text: str, value: float | None) -> None:
    assert parse_fraction(text) == (pytest.approx(value) if value is not None else None)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "JSON object"),
        ({"version": "3"}, "version"),
        ({"version": "4", "alerts": {}}, "'alerts' must be a list"),
        ({"version": "4", "status": "firing", "groupKey": "k", "alerts": [{"status": "odd"}]}, r"alerts\[0\]"),
        ({"version": "4", "status": "firing", "alerts": []}, "groupKey"),
    ],
)
def test_bad_webhooks(payload: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Notification.from_webhook(payload, 0.0)


def test_matchers() -> None:
    assert parse_matcher('slo=~"chat-.*"').matches({"slo": "chat-latency"})
    assert not parse_matcher('slo=~"chat"').matches({"slo": "chat-latency"})  # anchored
    assert parse_matcher('team!="x"').matches({})
    assert parse_matcher("severity=page").matches({"severity": "page"})
    assert parse_matcher('a="q\\"uote"').value == 'q"uote'
    with pytest.raises(ValueError, match="regular expression"):
        parse_matcher('a=~"("')
