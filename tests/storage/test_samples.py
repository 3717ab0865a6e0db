from __future__ import annotations

import time
from pathlib import Path

import pytest

from genai_sre.config import StorageConfig
from genai_sre.errors import StorageError
from genai_sre.events import Evaluation, Finding
from genai_sre.storage.db import open_db
from genai_sre.storage.redact import redact
from genai_sre.storage.samples import SampleStore
from tests.factories import evaluation

PII = {
    "email": "write to jane.roe@example.org please",
    "phone": "call me on +44 20 7946 0958 tonight",
    "card": "my card is 4111-1111-1111-1111",
    "iban": "IBAN GB82 WEST 1234 5698 7654 32",
    "account": "account number 00123456789",
    "key": "use sk-proj-AbCdEf0123456789xyz for it",
    "bearer": "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9abcdef",
}
SECRETS = [
    "jane.roe@example.org",
    "7946 0958",
    "4111-1111-1111-1111",
    "GB82 WEST",
    "00123456789",
    "sk-proj-AbCdEf",
    "eyJhbGci",
]


@pytest.mark.parametrize("kind", sorted(PII))
def test_redaction_removes_each_pattern(kind: str) -> None:
    out = redact(PII[kind])
    assert not any(s in out for s in SECRETS), out
    assert "[" in out


def test_redaction_keeps_ordinary_facts() -> None:
    text = "The Eiffel Tower is 330 metres tall, opened in 1889, and had 7 million visitors."
    assert redact(text) == text


def _risky(i: int, at: float, answer: str, label: str = "flagged") -> Evaluation:
    f = Finding(
        name="hallucination_risk", score=0.9, label=label, explanation=PII["phone"], detector="h", exchange_id=f"ex-{i}"
    )
    return evaluation(
        (f,), {"h": "scored"}, id=f"ex-{i}", started_at=at, model="m", question="Q " + PII["email"], answer=answer,
        context=PII["card"],
    )


def test_stored_samples_are_redacted_and_retention_deletes_old_rows(tmp_path: Path) -> None:
    cfg = StorageConfig(data_dir=str(tmp_path), store_samples=True, sample_rate=1.0, retention_days=1, max_samples=3)
    store = SampleStore(tmp_path, cfg)
    now = time.time()
    store.consume(_risky(0, now - 3 * 86400, "old " + PII["key"]))
    for i in range(1, 6):
        store.consume(_risky(i, now - i, "answer " + PII["iban"]))
    store.flush()
    raw = b"".join(f.read_bytes() for f in tmp_path.iterdir())
    for secret in SECRETS:
        assert secret.encode() not in raw
    store.apply_retention(now)  # also runs by itself after writes
    assert store.count(0, now + 1) == 3
    rows = store.samples(0, now + 1, bad_only=True)
    assert [r["id"] for r in rows] == ["ex-1", "ex-2", "ex-3"]  # old row gone, newest three kept
    assert rows[0]["findings"][0]["score"] == 0.9 and "[PHONE]" in rows[0]["findings"][0]["explanation"]
    store.close()


def test_without_content_only_flagged_findings_are_kept(tmp_path: Path) -> None:
    store = SampleStore(tmp_path, StorageConfig(store_samples=False))
    store.consume(_risky(1, time.time(), "secret answer", label="pass"))
    store.consume(_risky(2, time.time(), "secret answer", label="flagged"))
    store.flush()
    rows = store.samples(0, time.time() + 1, bad_only=False)
    assert [r["id"] for r in rows] == ["ex-2"] and rows[0]["answer"] is None
    assert b"secret answer" not in b"".join(f.read_bytes() for f in tmp_path.iterdir())
    store.close()


def test_migrations_apply_once_and_refuse_newer_schemas(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    conn = open_db(db, "t", ["CREATE TABLE a (x INTEGER)", "ALTER TABLE a ADD COLUMN y TEXT"])
    conn.execute("INSERT INTO a VALUES (1, 'k')")
    conn.close()
    conn = open_db(db, "t", ["CREATE TABLE a (x INTEGER)", "ALTER TABLE a ADD COLUMN y TEXT"])
    assert conn.execute("SELECT y FROM a").fetchone() == ("k",)
    conn.close()
    with pytest.raises(StorageError, match="newer"):
        open_db(db, "t", ["CREATE TABLE a (x INTEGER)"])


def test_a_failed_write_does_not_wedge_the_store(tmp_path: Path) -> None:
    store = SampleStore(tmp_path, StorageConfig(store_samples=True, sample_rate=1.0))
    good = {
        "id": "g",
        "at": 1.0,
        "route": "r",
        "model": "m",
        "upstream": "u",
        "status": 200,
        "error": None,
        "ttft_s": None,
        "duration_s": None,
        "bad": 1,
        "labels": "{}",
        "findings": "[]",
        "question": None,
        "answer": None,
        "context": None,
    }
    with pytest.raises(Exception):  # noqa: B017
        store._write([{**good, "id": object()}])  # cannot be bound
    store._write([good])
    assert [r["id"] for r in store.samples(0, 2)] == ["g"]
    store._write([{**good, "at": 1.5}])  # a reused id never overwrites stored evidence
    assert store.samples(0, 2)[0]["at"] == 1.0
    store.close()
