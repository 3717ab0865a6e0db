"""The simulated upstream is deterministic for a seed and follows its scenario phases."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest

from genai_sre.errors import ConfigError
from genai_sre.mock.answers import REFUSAL, faithful_answer, invented_answer
from genai_sre.mock.scenario import Latency, Phase, Scenario, load_scenario
from tests.harness import stack

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = "The bridge opened in 1937. Its main span is 1280 metres long. It is painted international orange."


def test_faithful_answers_come_from_the_context_and_invented_ones_do_not() -> None:
    rng = random.Random(1)
    faithful = faithful_answer(CONTEXT, "How long is the main span?", rng)
    assert "1280 metres" in faithful and faithful in CONTEXT
    invented = invented_answer(CONTEXT, "How long is the main span?", rng)
    assert invented not in CONTEXT and len(invented) > len(faithful)


def test_phases_by_time_and_loop() -> None:
    sc = Scenario(phases=(Phase(name="a", duration_s=10), Phase(name="b", duration_s=5)), loop=True)
    assert [sc.phase_at(t).name for t in (0, 9.9, 10, 14.9, 15, 26)] == ["a", "a", "b", "b", "a", "b"]
    once = Scenario(phases=sc.phases, loop=False)
    assert once.phase_at(100).name == "b"


def test_shipped_scenarios_load_and_bad_ones_name_the_key(tmp_path: Path) -> None:
    for path in (ROOT / "configs" / "scenarios").glob("*.yaml"):
        assert load_scenario(path).phases
    bad = tmp_path / "bad.yaml"
    bad.write_text("phases:\n  - name: x\n    error_rate: 1.5\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:2: phases\[0\]: .*error_rate must be within"):
        load_scenario(bad)


@pytest.mark.integration
def test_same_seed_same_answers_and_group_refusals() -> None:
    scenario = Scenario(
        seed=5,
        phases=(
            Phase(
                name="p", ttft_s=Latency(0.0, 0.0), tokens_per_s=100000, invent_rate=0.5, refusal_by_group={"b": 1.0}
            ),
        ),
    )
    body = {
        "model": "m",
        "messages": [{"role": "system", "content": CONTEXT}, {"role": "user", "content": "How long is the span?"}],
    }

    def run() -> list[str]:
        with stack(scenario) as s:
            return [
                httpx.post(s.mock_url + "/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"]
                for _ in range(8)
            ]

    first, second = run(), run()
    assert first == second and len(set(first)) > 1  # deterministic, and both faithful and invented answers occur
    with stack(scenario) as s:
        r = httpx.post(s.mock_url + "/v1/chat/completions", json=body, headers={"x-user-group": "b"})
        assert r.json()["choices"][0]["message"]["content"] == REFUSAL
        pinned = httpx.post(s.mock_url + "/_mock/phase", json={"name": "nope"})
        assert pinned.status_code == 400


def test_faithful_answers_read_like_answers_not_like_the_system_prompt() -> None:
    rng = random.Random(2)
    context = (
        "Answer only from these documents.\n\nOur refund policy allows returns within 30 days of delivery. "
        "Items must be unused and in their original packaging.\nHow long do I have to return an item?"
    )
    answer = faithful_answer(context, "How long do I have to return an item?", rng)
    assert answer.startswith("Our refund policy allows returns within 30 days")  # "returns" matches "return"
    assert "Answer only" not in answer and "?" not in answer
    reef = "Answer only from these documents.\n\nThe Great Barrier Reef lies off Queensland. It stretches for 2300 km."
    assert faithful_answer(reef, "How long is the Great Barrier Reef?", rng) == (
        "The Great Barrier Reef lies off Queensland. It stretches for 2300 km."  # the next sentence continues it
    )
    assert "Answer only" not in invented_answer(reef, "How long is the Great Barrier Reef?", rng)
    assert faithful_answer("Answer only from these documents.", "Who painted it?", rng).startswith("Based on")
