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


# --- the bundled config, layering, environment variables, the data directory ----------------------------


def test_without_a_file_the_bundled_config_applies_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, environ={})
    assert [d.name for d in cfg.detectors] == ["latency", "hallucination", "refusal", "bias"]
    assert all(d.enabled for d in cfg.detectors)
    assert cfg.resolve(cfg.slo.file or "").is_file() and cfg.resolve(cfg.alerting.file or "").is_file()
    assert cfg.upstreams[0].url == "https://api.openai.com"
    assert Path(cfg.storage.data_dir) == tmp_path / ".genai-sre"


def test_a_file_is_laid_over_the_bundled_config(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("version: genai-sre/v1\n")
    p = _write(tmp_path, "proxy: {port: 9001}\nslo: {file: mine.yaml}\nlabels: {group_headers: {region: x-region}}\n")
    cfg = load_config(p, environ={})
    assert cfg.proxy.port == 9001 and cfg.proxy.host == "127.0.0.1"  # a section merges key by key
    assert [d.name for d in cfg.detectors] == ["latency", "hallucination", "refusal", "bias"]  # left out: bundled
    assert cfg.resolve(cfg.slo.file or "") == tmp_path / "mine.yaml"  # your paths: relative to your file
    assert cfg.resolve(cfg.alerting.file or "") == load_config(None, environ={}).resolve("alerting.yaml")
    assert dict(cfg.labels.group_headers) == {"region": "x-region"}
    mine = load_config(_write(tmp_path, "detectors: [{name: l, type: latency}]\n"), environ={})
    assert [d.name for d in mine.detectors] == ["l"]  # a list replaces the bundled one whole


ENV = {
    "GENAI_SRE_UPSTREAM": "http://10.0.0.1:8000",
    "GENAI_SRE_HOST": "0.0.0.0",
    "GENAI_SRE_PORT": "9100",
    "GENAI_SRE_ADMIN_HOST": "0.0.0.0",
    "GENAI_SRE_ADMIN_PORT": "9200",
    "GENAI_SRE_DATA_DIR": "/var/lib/x",
    "GENAI_SRE_LOG_LEVEL": "debug",
    "GENAI_SRE_SLO_EVALUATE": "prometheus",
    "GENAI_SRE_INCIDENTS_ROLE": "off",
}


@pytest.mark.parametrize("with_file", [False, True])
def test_environment_variables_work_with_or_without_a_file(tmp_path: Path, with_file: bool) -> None:
    path = None
    if with_file:  # the file says otherwise for every key: the variables win
        path = _write(
            tmp_path,
            "upstreams: [{name: a, url: 'http://a:1'}, {name: b, url: 'http://b:2'}]\n"
            "proxy: {host: 127.0.0.2, port: 1000}\nadmin: {host: 127.0.0.3, port: 1001}\n"
            "storage: {data_dir: here}\nlogging: {level: ERROR}\nslo: {evaluate: inprocess}\n"
            "incidents: {role: primary}\n",
        )
    cfg = load_config(path, environ=ENV)
    assert cfg.upstreams[0].url == "http://10.0.0.1:8000"
    assert (cfg.proxy.host, cfg.proxy.port, cfg.admin.host, cfg.admin.port) == ("0.0.0.0", 9100, "0.0.0.0", 9200)
    assert cfg.storage.data_dir == "/var/lib/x" and cfg.logging.level == "DEBUG"
    assert cfg.slo.evaluate == "prometheus" and cfg.incidents.role == "off"
    if with_file:
        assert [u.name for u in cfg.upstreams] == ["a", "b"] and cfg.upstreams[1].url == "http://b:2"
    flags = load_config(path, environ=ENV, upstream="http://flag:3", port=9300)
    assert flags.upstreams[0].url == "http://flag:3" and flags.proxy.port == 9300  # flags win over variables


def test_a_bad_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\$GENAI_SRE_PORT: proxy.port: must be an integer, got 'eighty'"):
        load_config(None, environ={"GENAI_SRE_PORT": "eighty"})
    with pytest.raises(ConfigError, match=r"upstreams\[0\] \(with \$GENAI_SRE_UPSTREAM\): .*url must be http"):
        load_config(_write(tmp_path, "proxy: {port: 1}\n"), environ={"GENAI_SRE_UPSTREAM": "ftp://x"})
    empty = load_config(None, environ={"GENAI_SRE_PORT": ""})  # empty counts as unset
    assert empty.proxy.port == 8788


def test_one_rule_for_the_data_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative data directory is taken from the working directory, whichever config names it."""
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    monkeypatch.chdir(run_dir)
    without = load_config(None, environ={})
    with_file = load_config(_write(elsewhere, "proxy: {port: 1}\n"), environ={})
    relative = load_config(_write(elsewhere, "storage: {data_dir: state}\n"), environ={})
    assert Path(without.storage.data_dir) == Path(with_file.storage.data_dir) == run_dir / ".genai-sre"
    assert Path(relative.storage.data_dir) == run_dir / "state"
    assert Path(load_config(None, environ={"GENAI_SRE_DATA_DIR": "d"}).storage.data_dir) == run_dir / "d"
