"""Tokens, spend and client-call metrics per model, tenant and app; the attribution labels; `/metrics` hygiene."""

from __future__ import annotations

from dataclasses import replace

import httpx
import openai
import pytest
from prometheus_client import CollectorRegistry

from genai_sre.config import Config, LabelsConfig, ModelPrice, PricesConfig, TelemetryConfig
from genai_sre.events import Evaluation, Usage
from genai_sre.proxy.routes import BoundedLabel
from genai_sre.telemetry.attribution import AttributionLabels, UserId
from genai_sre.telemetry.metrics import Metrics
from genai_sre.telemetry.pricing import PriceTable
from genai_sre.telemetry.usage import UsageMetrics
from tests.factories import exchange
from tests.harness import stack

PRICES = PriceTable({"gpt-4o": ModelPrice(input=2.5, output=10.0, cache_read=1.25)})


# a non-streaming gpt-4o answer attributed to tenant acme and app shop
SHOP = exchange(upstream_duration_s=0.4, labels={"tenant": "acme", "app": "shop"})


def _sink() -> tuple[UsageMetrics, CollectorRegistry]:
    registry = CollectorRegistry()
    return UsageMetrics(Metrics(registry, process=False), PRICES, BoundedLabel()), registry


def test_reported_usage_is_counted_priced_and_attributed() -> None:
    sink, reg = _sink()
    usage = Usage(input_tokens=1000, output_tokens=200, cache_read_tokens=800, reasoning_tokens=50)
    sink.consume(Evaluation(replace(SHOP, usage=usage, response_model="gpt-4o-2024-08-06")))
    who = {"model": "gpt-4o", "tenant": "acme", "app": "shop"}
    get = reg.get_sample_value
    for token_type, n in (("input", 1000), ("output", 200), ("cache_read", 800), ("reasoning", 50)):
        assert get("genai_sre_tokens_total", {**who, "token_type": token_type, "source": "usage"}) == n
    assert get("genai_sre_tokens_total", {**who, "token_type": "cache_write", "source": "usage"}) is None
    expected = (200 * 2.5 + 800 * 1.25 + 200 * 10.0) / 1e6
    assert get("genai_sre_cost_usd_total", {**who, "source": "usage"}) == pytest.approx(expected)
    assert get("genai_sre_usage_requests_total", {**who, "pricing": "priced"}) == 1
    op = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "openai", "gen_ai_request_model": "gpt-4o"}
    assert get("gen_ai_client_token_usage_sum", {**op, "gen_ai_token_type": "input"}) == 1000
    assert get("gen_ai_client_operation_duration_seconds_sum", {**op, "error_type": ""}) == pytest.approx(0.4)


def test_unpriced_missing_estimated_supplement_and_probe() -> None:
    sink, reg = _sink()
    get = reg.get_sample_value
    sink.consume(Evaluation(replace(SHOP, model="my-llama", usage=Usage(10, 5))))
    assert get("genai_sre_usage_requests_total", {"model": "my-llama", "tenant": "acme", "app": "shop",
                                                  "pricing": "unpriced"}) == 1
    assert get("genai_sre_cost_usd_total", {"model": "my-llama", "tenant": "acme", "app": "shop",
                                            "source": "usage"}) is None
    sink.consume(Evaluation(replace(SHOP, usage=Usage(), labels={})))
    assert get("genai_sre_usage_requests_total", {"model": "gpt-4o", "tenant": "none", "app": "none",
                                                  "pricing": "no_usage"}) == 1
    # estimated counts are marked and kept out of the convention's histogram
    sink.consume(Evaluation(replace(SHOP, usage=Usage(100, 10, estimated=True))))
    who = {"model": "gpt-4o", "tenant": "acme", "app": "shop"}
    assert get("genai_sre_tokens_total", {**who, "token_type": "input", "source": "estimated"}) == 100
    assert get("genai_sre_cost_usd_total", {**who, "source": "estimated"}) == pytest.approx(350 / 1e6)
    op = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "openai", "gen_ai_request_model": "gpt-4o"}
    assert get("gen_ai_client_token_usage_count", {**op, "gen_ai_token_type": "input"}) is None
    # a supplement's exchange was counted already; a probe is the sidecar's own spending
    sink.consume(Evaluation(replace(SHOP, usage=Usage(100, 10)), supplement=True))
    assert get("genai_sre_tokens_total", {**who, "token_type": "input", "source": "usage"}) is None
    sink.consume(Evaluation(replace(SHOP, usage=Usage(100, 10), probe=True)))
    assert get("genai_sre_usage_requests_total", {"model": "gpt-4o", "tenant": "genai-sre", "app": "probes",
                                                  "pricing": "priced"}) == 1


def test_attribution_labels_stay_bounded() -> None:
    fixed = AttributionLabels(LabelsConfig(tenants=("acme", "globex")))
    assert fixed({"x-tenant": "acme", "x-app": "shop"}) == ("acme", "shop")
    assert fixed({"x-tenant": "initech"})[0] == "other" and fixed({})[0] == "none"
    seen = AttributionLabels(LabelsConfig(max_values=3))
    values = [seen({"x-tenant": f"t{i}"})[0] for i in range(10)]
    assert values[:3] == ["t0", "t1", "t2"] and set(values[3:]) == {"other"}


def test_user_id_is_a_keyed_hash_or_omitted() -> None:
    keyed = UserId.from_config(TelemetryConfig(), {"GENAI_SRE_USER_ID_KEY": "k1"})
    other = UserId.from_config(TelemetryConfig(), {"GENAI_SRE_USER_ID_KEY": "k2"})
    value = keyed("alice@example.com")
    assert value and len(value) == 32 and "alice" not in value and value != other("alice@example.com")
    assert keyed("alice@example.com") == value and keyed(None) is None
    assert UserId.from_config(TelemetryConfig(user_id="omit"), {"GENAI_SRE_USER_ID_KEY": "k1"})("alice") is None
    assert UserId.from_config(TelemetryConfig(), {})("alice") is None  # no key, no reversible hash


def test_cost_and_tenant_metrics_through_the_sidecar() -> None:
    def configure(cfg: Config) -> Config:
        prices = PricesConfig(models={"mock-llm": ModelPrice(input=1.0, output=2.0)})
        return replace(cfg, telemetry=TelemetryConfig(prices=prices), detectors=())

    with stack(configure=configure) as s:
        client = openai.OpenAI(base_url=s.proxy_url + "/v1", api_key="sk-test", max_retries=0)
        headers = {"x-tenant": "acme", "x-app": "shop"}
        messages = [{"role": "user", "content": "How tall is the Eiffel Tower?"}]
        done = client.chat.completions.create(model="mock-llm", messages=messages, extra_headers=headers)  # type: ignore[arg-type]
        list(client.chat.completions.create(model="mock-llm", messages=messages, stream=True,  # type: ignore[arg-type]
                                            extra_headers=headers))
        s.idle()
        text = httpx.get(s.admin_url + "/metrics").text
        get = s.sidecar.registry.get_sample_value
    assert done.usage is not None
    who = {"model": "mock-llm", "tenant": "acme", "app": "shop"}
    cost = (done.usage.prompt_tokens * 1.0 + done.usage.completion_tokens * 2.0) / 1e6
    assert get("genai_sre_cost_usd_total", {**who, "source": "usage"}) == pytest.approx(cost)
    assert get("genai_sre_usage_requests_total", {**who, "pricing": "priced"}) == 1
    assert get("genai_sre_usage_requests_total", {**who, "pricing": "no_usage"}) == 1  # a stream without usage
    assert "process_resident_memory_bytes" in text and "python_info" in text
    assert "_created" not in text
