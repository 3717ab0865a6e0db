"""The official SDKs through the sidecar get exactly what they get from the upstream directly."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from genai_sre.events import Evaluation
from genai_sre.mock.scenario import Latency, Phase, Scenario
from tests.harness import stack

pytestmark = pytest.mark.integration

FAST = Scenario(phases=(Phase(name="fast", ttft_s=Latency(0.0, 0.0), tokens_per_s=100000),))
MESSAGES = [
    {
        "role": "system",
        "content": "The Eiffel Tower is 330 metres tall. It was completed in 1889 for the World's Fair.",
    },
    {"role": "user", "content": "How tall is the Eiffel Tower and when was it completed?"},
]


class Recorder:
    def __init__(self) -> None:
        self.evaluations: list[Evaluation] = []

    def consume(self, evaluation: Evaluation) -> None:
        self.evaluations.append(evaluation)


def _strip(obj: dict) -> dict:  # type: ignore[type-arg]
    obj = dict(obj)
    obj.pop("id", None)
    obj.pop("created", None)
    return obj


def test_openai_chat_non_streaming_matches_direct() -> None:
    with stack(FAST) as s:
        via = openai.OpenAI(base_url=s.proxy_url + "/v1", api_key="sk-test", max_retries=0)
        direct = openai.OpenAI(base_url=s.mock_url + "/v1", api_key="sk-test", max_retries=0)
        a = via.chat.completions.create(model="mock-llm", messages=MESSAGES)  # type: ignore[arg-type]
        b = direct.chat.completions.create(model="mock-llm", messages=MESSAGES)  # type: ignore[arg-type]
        assert _strip(a.model_dump()) == _strip(b.model_dump())
        assert "330 metres" in (a.choices[0].message.content or "")
        assert a.usage is not None and a.usage.completion_tokens > 0


def test_openai_streaming_with_usage_and_tools() -> None:
    rec = Recorder()

    async def wire(sc):  # type: ignore[no-untyped-def]
        sc.sinks.append(rec)

    with stack(FAST, wire=wire) as s:
        client = openai.OpenAI(base_url=s.proxy_url + "/v1", api_key="sk-test", max_retries=0)
        chunks = list(
            client.chat.completions.create(
                model="mock-llm",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},  # type: ignore[arg-type]
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert "330 metres" in text
        assert chunks[-1].usage is not None and chunks[-1].choices == []
        tools = [
            {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
        ]
        r = client.chat.completions.create(model="mock-llm", messages=MESSAGES, tools=tools)  # type: ignore[arg-type]
        assert r.choices[0].finish_reason == "tool_calls"
        assert r.choices[0].message.tool_calls and r.choices[0].message.tool_calls[0].function.name == "lookup"
        s.idle()
    streamed = [e.exchange for e in rec.evaluations if e.exchange.stream]
    assert streamed and "330 metres" in streamed[0].answer
    assert streamed[0].usage.output_tokens and not streamed[0].usage.estimated
    tool_ex = [e.exchange for e in rec.evaluations if e.exchange.tool_calls]
    assert tool_ex and tool_ex[0].tool_calls[0].name == "lookup"


def test_openai_errors_reach_the_client_unchanged() -> None:
    scenario = Scenario(phases=(Phase(name="down", ttft_s=Latency(0.0, 0.0), error_rate=1.0, error_status=500),))
    with stack(scenario) as s:
        client = openai.OpenAI(base_url=s.proxy_url + "/v1", api_key="sk-test", max_retries=0)
        with pytest.raises(openai.InternalServerError) as err:
            client.chat.completions.create(model="mock-llm", messages=MESSAGES)  # type: ignore[arg-type]
        assert err.value.status_code == 500
        assert "simulated upstream is failing" in str(err.value)
        r = httpx.post(
            s.proxy_url + "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 400 and "invalid JSON" in r.text  # the upstream's verdict, passed through


def test_responses_api_and_embeddings_pass_through() -> None:
    with stack(FAST) as s:
        client = openai.OpenAI(base_url=s.proxy_url + "/v1", api_key="sk-test", max_retries=0)
        resp = client.responses.create(model="mock-llm", input="Paris is the capital of France. What is the capital?")
        assert "Paris" in resp.output_text
        emb = client.embeddings.create(model="mock-embed", input=["a", "b"])
        assert len(emb.data) == 2
        models = client.models.list()
        assert models.data[0].id == "mock-llm"


def test_anthropic_messages_stream_and_not() -> None:
    rec = Recorder()

    async def wire(sc):  # type: ignore[no-untyped-def]
        sc.sinks.append(rec)

    with stack(FAST, wire=wire) as s:
        via = anthropic.Anthropic(base_url=s.proxy_url, api_key="sk-ant-test", max_retries=0)
        direct = anthropic.Anthropic(base_url=s.mock_url, api_key="sk-ant-test", max_retries=0)
        kw = {
            "model": "mock-claude",
            "max_tokens": 100,
            "system": "The Nile is about 6650 km long.",
            "messages": [{"role": "user", "content": "How long is the Nile river in km?"}],
        }
        a = via.messages.create(**kw)  # type: ignore[arg-type]
        b = direct.messages.create(**kw)  # type: ignore[arg-type]
        assert a.content[0].text == b.content[0].text  # type: ignore[union-attr]
        assert "6650" in a.content[0].text  # type: ignore[union-attr]
        with via.messages.stream(**kw) as stream:  # type: ignore[arg-type]
            text = "".join(stream.text_stream)
        assert "6650" in text
        s.idle()
    msgs = [e.exchange for e in rec.evaluations if e.exchange.route == "/v1/messages"]
    assert {e.provider for e in msgs} == {"anthropic"}
    assert all("6650" in e.answer for e in msgs)
    assert any(e.stream and e.usage.output_tokens for e in msgs)
