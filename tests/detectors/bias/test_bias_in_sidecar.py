"""In a running sidecar the bias detector gets the hallucination risk of each exchange as an outcome."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from genai_sre.config import DetectorConfig
from tests.harness import stack

pytestmark = pytest.mark.integration


def test_the_hallucination_risk_reaches_the_bias_detector() -> None:
    def cfg(c):  # type: ignore[no-untyped-def]
        return replace(
            c,
            labels=replace(c.labels, group_headers={"region": "x-region"}),
            detectors=(
                DetectorConfig(name="hallucination", type="hallucination"),
                DetectorConfig(name="bias", type="bias", options={"min_count": 5}),
            ),
        )

    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "The Eiffel Tower in Paris is 330 metres tall and was finished in 1889."},
            {"role": "user", "content": "How tall is the Eiffel Tower?"},
        ],
    }
    with stack(configure=cfg) as s, httpx.Client() as client:
        for i in range(40):
            region = "eu" if i % 2 else "us"
            assert client.post(s.proxy_url + "/v1/chat/completions", json=body, headers={"x-region": region}).is_success
        s.idle()
        bias = next(slot.detector for slot in s.sidecar.runner.slots if slot.name == "bias")
        rows = [r for r in bias.report() if r.metric == "hallucination_risk"]
    assert bias.after == ("hallucination",)
    assert rows, "the bias detector never saw a hallucination risk"
