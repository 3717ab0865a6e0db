from __future__ import annotations

from pathlib import Path

import pytest

from genai_sre.config import load_config
from genai_sre.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "sidecar.yaml"
    p.write_text(text)
    return p


def test_shipped_configs_load() -> None:
    cfg = load_config(ROOT / "configs" / "sidecar.yaml", environ={})
    assert cfg.upstreams and cfg.proxy.port == 8788 and cfg.admin.port == 9464
    assert {d.name for d in cfg.detectors} >= {"latency"}


def test_env_substitution_with_defaults(tmp_path: Path) -> None:
    p = _write(tmp_path, "proxy:\n  port: ${PORT:-9000}\nupstreams:\n  - {name: a, url: '${UP}'}\n")
    cfg = load_config(p, environ={"UP": "http://127.0.0.1:1234"})
    assert cfg.proxy.port == 9000 and cfg.upstreams[0].url == "http://127.0.0.1:1234"
    with pytest.raises(ConfigError, match=r"sidecar.yaml:4: upstreams\[0\].url: environment variable 'UP' is not set"):
        load_config(p, environ={})


def test_env_values_cannot_inject_structure(tmp_path: Path) -> None:
    p = _write(tmp_path, "upstreams:\n  - {name: a, url: 'http://x', provider: '${P}'}\n")
    with pytest.raises(ConfigError, match="provider"):
        load_config(p, environ={"P": "openai\nproxy: {port: 1}"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("proxy:\n  port: eighty\n", r"sidecar.yaml:2: proxy.port: must be an integer, got 'eighty'"),
        ("proxy:\n  prot: 1\n", r"sidecar.yaml:2: proxy.prot: unknown key 'prot'"),
        ("upstreams:\n  - name: a\n    url: ftp://x\n", r"sidecar.yaml:2: upstreams\[0\]: .*url must be http"),
        ("upstreams:\n  - url: http://x\n", r"sidecar.yaml:2: upstreams\[0\]: missing required key 'name'"),
        ("logging: {level: LOUD}\n", r"sidecar.yaml:1: logging.level: must be one of"),
        ("proxy: [1, 2]\n", r"sidecar.yaml:1: proxy: must be a mapping"),
        ("proxy: {port: 1\n", r"not valid YAML"),
        ("detectors:\n  - {name: a, type: latency}\n  - {name: a, type: latency}\n", r"detector names must be unique"),
    ],
)
def test_errors_name_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, text), environ={})


def test_flags_override_the_file(tmp_path: Path) -> None:
    p = _write(tmp_path, "upstreams:\n  - {name: a, url: 'http://a:1'}\nproxy: {port: 1000}\n")
    cfg = load_config(p, environ={}, upstream="http://b:2", port=2000)
    assert cfg.upstreams[0].url == "http://b:2" and cfg.proxy.port == 2000
    with pytest.raises(ConfigError, match="--upstream"):
        load_config(p, environ={}, upstream="nonsense")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml")
