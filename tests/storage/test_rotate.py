"""Bounded JSON-lines files: size rotation, the number of files kept, age-based deletion, concurrent appends."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path

import pytest

from genai_sre.alerting.config import DeliveryConfig
from genai_sre.alerting.delivery import Delivery
from genai_sre.alerting.receivers.file import FileReceiver
from genai_sre.errors import ConfigError
from genai_sre.storage.rotate import RotatingFile
from tests.alerting.helpers import alert


def _lines(paths: list[Path]) -> list[str]:
    return [line for p in paths for line in p.read_text().splitlines()]


def test_rotates_by_size_and_keeps_n_files(tmp_path: Path) -> None:
    f = RotatingFile(tmp_path / "a.jsonl", max_bytes=100, keep=2)
    for i in range(40):
        f.append(json.dumps({"i": i, "pad": "x" * 10}) + "\n")  # 30 bytes a line: 3 lines a file
    files = [f.path, *f.rotated()]
    assert [p.name for p in files] == ["a.jsonl", "a.jsonl.1", "a.jsonl.2"]
    assert all(p.stat().st_size <= 100 for p in files)
    kept = sorted(json.loads(line)["i"] for line in _lines(files))
    assert kept == list(range(40 - len(kept), 40)) and len(kept) >= 7  # the newest lines, none split
    assert not (tmp_path / "a.jsonl.3").exists()


def test_age_limit_deletes_old_rotated_files(tmp_path: Path) -> None:
    f = RotatingFile(tmp_path / "a.jsonl", max_bytes=10, keep=5, max_age_days=1)
    f.append("first line\n")
    f.append("second line\n")
    old = f.rotated()[0]
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    f.append("third line\n")  # rotates, then prunes what is older than a day
    assert [p.read_text() for p in f.rotated()] == ["second line\n"]


def test_unbounded_when_asked_and_concurrent_appends_stay_whole(tmp_path: Path) -> None:
    f = RotatingFile(tmp_path / "a.jsonl", max_bytes=0)
    for _ in range(100):
        f.append("y" * 50 + "\n")
    assert f.path.stat().st_size == 5100 and not f.rotated()
    g = RotatingFile(tmp_path / "b.jsonl", max_bytes=500, keep=1000)

    def write(n: int) -> None:
        for i in range(50):
            g.append(json.dumps({"t": n, "i": i}) + "\n")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(_lines([g.path, *g.rotated()])) == 200


def test_file_receiver_and_delivery_log_rotate(tmp_path: Path) -> None:
    from genai_sre.alerting.notification import Notification

    receiver = FileReceiver("alerts.jsonl", data_dir=tmp_path, max_bytes=2000, keep=1)
    delivery = Delivery(DeliveryConfig(log_max_bytes=300, log_keep=2), log_path=tmp_path / "deliveries.jsonl")

    async def run() -> None:
        for i in range(10):
            n = Notification(receiver="file", group_key=f"g{i}", status="firing", group_labels={},
                             alerts=(alert(slo=f"s{i}"),), sent_at=1.0)
            await delivery.deliver("file", receiver, n)

    asyncio.run(run())
    assert (tmp_path / "alerts.jsonl.1").exists() and not (tmp_path / "alerts.jsonl.2").exists()
    assert (tmp_path / "deliveries.jsonl.2").exists() and not (tmp_path / "deliveries.jsonl.3").exists()
    with pytest.raises(ConfigError):
        FileReceiver("x.jsonl", data_dir=tmp_path, keep=-1)
