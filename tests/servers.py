"""The real external servers the integration tests start, one context manager each, and their command-line checks.

- `prometheus(tmp, targets, rules=..., rule_files=..., config=...)` yields a `Prometheus` with query helpers;
- `alertmanager(tmp, config)` yields an `Alertmanager`;
- `promtool(...)` and `amtool(...)` run the checkers and fail with their output;
- PostgreSQL is `tests/pg.py` (`postgres_server()`, the session fixture `pg_server` in `tests/conftest.py`).

Every server listens on 127.0.0.1 on a free port, keeps its files and its log under the test's temporary
directory, is waited for with a bounded loop and stopped (terminate, then kill) when the block ends. A
binary that is not installed fails the test with the command that installs it, never skips it.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "SYSTEM_DEPS",
    "Alertmanager",
    "Prometheus",
    "alertmanager",
    "amtool",
    "binary",
    "free_port",
    "get_json",
    "prometheus",
    "promtool",
    "running",
]

SYSTEM_DEPS = "run `make system-deps` (Debian packages prometheus, prometheus-alertmanager, postgresql)"
START_TIMEOUT_S = 30.0


def binary(name: str) -> str:
    """The path of a system binary; fails with the install command when it is missing."""
    path = shutil.which(name)
    if path is None:
        raise AssertionError(f"{name} is not installed: {SYSTEM_DEPS}")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str, timeout_s: float = 10.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:
        return json.loads(resp.read())


def _checked(name: str, args: Sequence[str | Path], cwd: Path | None, timeout_s: float) -> str:
    argv = [binary(name), *map(str, args)]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=timeout_s)
    assert proc.returncode == 0, f"{' '.join(argv[1:])}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def promtool(*args: str | Path, cwd: Path | None = None, timeout_s: float = 120.0) -> str:
    """`promtool ARGS`: its standard output, or a failure showing everything it printed."""
    return _checked("promtool", args, cwd, timeout_s)


def amtool(*args: str | Path, timeout_s: float = 30.0) -> str:
    """`amtool ARGS`: its standard output, or a failure showing everything it printed."""
    return _checked("amtool", args, None, timeout_s)


@contextmanager
def running(argv: Sequence[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process with its output in `log`, terminated (then killed) when the block ends."""
    with log.open("wb") as out:
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _wait_ready(name: str, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Until `url/-/ready` answers 200; fails with the log's tail if the process exits or the deadline passes."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            why = f"not ready in {START_TIMEOUT_S} s" if proc.returncode is None else f"exited with {proc.returncode}"
            raise AssertionError(f"{name} {why}: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)


def _workdir(tmp: Path, name: str) -> Path:
    folder = tmp / name
    folder.mkdir()
    return folder


class Prometheus:
    """A running Prometheus's HTTP API."""

    def __init__(self, url: str) -> None:
        self.url = url

    def api(self, path: str, **params: str) -> Any:
        q = urllib.parse.urlencode(params)
        body = get_json(f"{self.url}/api/v1/{path}?{q}")
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def query_range(self, expr: str, start: float, end: float, step: str = "1s") -> list[dict[str, Any]]:
        try:
            data = self.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=step)
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"Prometheus rejected {expr!r}: {exc.read().decode()}") from exc
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait_for(self, expr: str, timeout_s: float = 15.0) -> list[dict[str, Any]]:
        """The first non-empty result of `expr`, polled until `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = self.query(expr)
            if result:
                return result
            time.sleep(0.25)
        raise AssertionError(f"no result for {expr!r} within {timeout_s} s")

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.api("alerts")["alerts"]
        return alerts

    def firing(self, severity: str | None = None) -> list[dict[str, Any]]:
        return [
            a for a in self.alerts()
            if a["state"] == "firing" and (severity is None or a["labels"].get("severity") == severity)
        ]


@contextmanager
def prometheus(
    tmp: Path,
    targets: Sequence[str] = (),
    *,
    rules: str | None = None,
    rule_files: Sequence[Path] = (),
    config: Mapping[str, Any] | None = None,
) -> Iterator[Prometheus]:
    """Prometheus scraping `targets` as job `genai-sre` and evaluating rules every second, or running `config`.

    `rules` is the text of a rules file, checked by `promtool check rules` before the server starts;
    `rule_files` are paths (globs) of rules files. Files, storage and log go to `tmp/prometheus/`.
    """
    work = _workdir(tmp, "prometheus")
    files = [str(p.resolve()) for p in rule_files]
    if rules is not None:
        (work / "rules.yml").write_text(rules)
        promtool("check", "rules", work / "rules.yml")
        files.append(str(work / "rules.yml"))
    if config is None:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": files,
            "scrape_configs": [{"job_name": "genai-sre", "static_configs": [{"targets": list(targets)}]}],
        }
    else:
        assert not targets and not files, "give either a whole config or targets and rules"
    (work / "prometheus.yml").write_text(yaml.safe_dump(dict(config)))
    port = free_port()
    argv = [
        binary("prometheus"),
        f"--config.file={work / 'prometheus.yml'}",
        f"--storage.tsdb.path={work / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    url = f"http://127.0.0.1:{port}"
    with running(argv, work / "prometheus.log") as proc:
        _wait_ready("prometheus", proc, url, work / "prometheus.log")
        yield Prometheus(url)


class Alertmanager:
    """A running Alertmanager."""

    def __init__(self, url: str) -> None:
        self.url = url


@contextmanager
def alertmanager(tmp: Path, config: Mapping[str, Any] | str) -> Iterator[Alertmanager]:
    """Alertmanager (no cluster) with `config` (a mapping or the YAML text); files and log go to `tmp/alertmanager/`."""
    work = _workdir(tmp, "alertmanager")
    text = config if isinstance(config, str) else yaml.safe_dump(dict(config))
    (work / "alertmanager.yml").write_text(text)
    port = free_port()
    argv = [
        binary("prometheus-alertmanager"),
        f"--config.file={work / 'alertmanager.yml'}",
        f"--storage.path={work / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    url = f"http://127.0.0.1:{port}"
    with running(argv, work / "alertmanager.log") as proc:
        _wait_ready("alertmanager", proc, url, work / "alertmanager.log")
        yield Alertmanager(url)
