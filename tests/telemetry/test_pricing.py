"""The price table: shipped prices, exact names and dated snapshots only, overrides, the cost formula."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from genai_sre.config import Config, ModelPrice, PricesConfig, TelemetryConfig, load_config
from genai_sre.errors import ConfigError
from genai_sre.events import Usage
from genai_sre.telemetry.pricing import PriceTable, builtin_prices, load_prices


def test_shipped_table_names_its_source_and_covers_the_three_apis() -> None:
    table = builtin_prices()
    assert table.source.startswith("litellm ")
    for model in ("gpt-4o", "gpt-4o-mini", "o4-mini", "claude-sonnet-4-5", "claude-haiku-4-5", "gemini-2.5-flash"):
        assert table.price(model) is not None, model
    # $2.50 in / $10 out per million tokens for gpt-4o, as OpenAI lists it
    assert table.cost("gpt-4o", Usage(1_000_000, 1_000_000)) == pytest.approx(12.5)


def test_snapshots_are_priced_as_their_model_but_nothing_is_guessed() -> None:
    table = PriceTable({"gpt-4o": ModelPrice(2.5, 10), "gpt-4o-mini": ModelPrice(0.15, 0.6)})
    assert table.price("gpt-4o-2024-08-06") == table.price("gpt-4o")
    assert table.price("gpt-4o-mini-2024-07-18") == table.price("gpt-4o-mini")  # longest name first
    assert table.price("gpt-4o-latest") == table.price("gpt-4o")
    for unknown in ("gpt-4o-ultra", "gpt-4", "my-llama", "", None):
        assert table.price(unknown) is None, unknown
    assert table.cost("my-llama", Usage(10, 10)) is None


def test_cost_splits_cache_and_reasoning_tokens() -> None:
    price = ModelPrice(input=3.0, output=15.0, cache_read=0.3, cache_write=3.75, reasoning=20.0)
    table = PriceTable({"m": price})
    usage = Usage(
        input_tokens=10_000, output_tokens=2_000, cache_read_tokens=6_000, cache_write_tokens=1_000,
        reasoning_tokens=500,
    )
    expected = (3_000 * 3.0 + 6_000 * 0.3 + 1_000 * 3.75 + 1_500 * 15.0 + 500 * 20.0) / 1e6
    assert table.cost("m", usage) == pytest.approx(expected)
    # without cache and reasoning prices, those tokens cost the plain input and output prices
    plain = PriceTable({"m": ModelPrice(input=1.0, output=2.0)})
    assert plain.cost("m", usage) == pytest.approx((10_000 * 1.0 + 2_000 * 2.0) / 1e6)
    # inconsistent counts (cache larger than the input) never make a negative cost
    odd = Usage(input_tokens=10, output_tokens=1, cache_read_tokens=50, reasoning_tokens=9)
    assert (plain.cost("m", odd) or 0) >= 0
    assert table.cost("m", Usage()) is None


def test_config_overrides_and_extends_the_shipped_table(tmp_path: Path) -> None:
    (tmp_path / "prices.yaml").write_text("source: our contract\nmodels:\n  gpt-4o: {input: 2, output: 8}\n")
    cfg = replace(
        Config(base_dir=str(tmp_path)),
        telemetry=TelemetryConfig(
            prices=PricesConfig(file="prices.yaml", models={"llama-3-70b": ModelPrice(input=0.5, output=0.5)})
        ),
    )
    table = load_prices(cfg)
    assert table.price("gpt-4o") == ModelPrice(2, 8) and table.price("llama-3-70b") == ModelPrice(0.5, 0.5)
    assert table.price("claude-haiku-4-5") is not None and "our contract" in table.source
    only_own = load_prices(replace(cfg, telemetry=replace(cfg.telemetry, prices=replace(cfg.telemetry.prices,
                                                                                        builtin=False))))
    assert only_own.price("claude-haiku-4-5") is None


def test_price_config_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "sidecar.yaml"
    path.write_text("telemetry:\n  prices:\n    models:\n      mine: {input: -1}\n")
    with pytest.raises(ConfigError, match=r"sidecar.yaml:4.*negative"):
        load_config(path)
    (tmp_path / "bad.yaml").write_text("just: text\n")
    path.write_text("telemetry:\n  prices:\n    file: bad.yaml\n")
    with pytest.raises(ConfigError, match="models"):
        load_prices(load_config(path))
