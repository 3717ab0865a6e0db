"""The built-in redaction patterns, one example each, and the configuration that disables and adds patterns."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from genai_sre.config import RedactionConfig, RedactionPattern, StorageConfig, load_config
from genai_sre.errors import ConfigError
from genai_sre.storage.redact import BUILTIN, Redactor, redact
from tests.factories import exchange

EXAMPLES = {
    "api_key": ("use sk-proj-abcdefghijklmnop1234 now", "[KEY]"),
    "credential": ("password: hunter2hunter2", "[KEY]"),
    "email": ("write to jane.doe@example.com", "[EMAIL]"),
    "iban": ("pay DE89 3704 0044 0532 0130 00 today", "[IBAN]"),
    "card": ("card 4111 1111 1111 1111 exp", "[CARD]"),
    "phone": ("call +1 415-555-0132 now", "[PHONE]"),
    "account": ("account no. 12345678", "[ACCOUNT]"),
    "long_token": ("token " + "a" * 12 + "Z" * 30 + " end", "[KEY]"),
}


def test_every_builtin_pattern_has_an_example_it_redacts() -> None:
    assert set(EXAMPLES) == {name for name, _, _ in BUILTIN}
    for name, (text, marker) in EXAMPLES.items():
        out = redact(text)
        assert marker in out, (name, out)
        alone = Redactor(RedactionConfig(disable=tuple(n for n in EXAMPLES if n != name)))
        assert marker in alone(text), f"{name} alone does not redact {text!r}"


def test_ordinary_text_is_left_alone() -> None:
    text = "The Eiffel Tower is 330 metres tall and was completed in 1889."
    assert redact(text) == text


def test_disable_and_add_patterns() -> None:
    r = Redactor(RedactionConfig(
        disable=("phone",),
        patterns=(RedactionPattern("employee_id", r"\bEMP-\d{6}\b", "[EMPLOYEE]"),),
    ))
    assert r("call +1 415-555-0132 about EMP-123456") == "call +1 415-555-0132 about [EMPLOYEE]"
    assert "phone" not in r.names and r.names[-1] == "employee_id"


def test_bad_redaction_config_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown pattern 'phones'"):
        Redactor(RedactionConfig(disable=("phones",)))
    with pytest.raises(ConfigError, match="'broken': invalid regular expression"):
        Redactor(RedactionConfig(patterns=(RedactionPattern("broken", "(unclosed"),)))
    with pytest.raises(ConfigError, match="empty string"):
        Redactor(RedactionConfig(patterns=(RedactionPattern("everything", ".*"),)))
    path = tmp_path / "sidecar.yaml"
    path.write_text(
        "storage:\n  redaction:\n    disable: [email]\n    patterns:\n      - {name: order, pattern: 'ORD-\\d+'}\n"
    )
    cfg = load_config(path)
    assert cfg.storage.redaction.disable == ("email",)
    assert Redactor(cfg.storage.redaction)("ORD-77 from a@b.io") == "[REDACTED] from a@b.io"


def test_the_evidence_store_uses_the_configured_redaction(tmp_path: Path) -> None:
    from genai_sre.events import Evaluation, Finding
    from genai_sre.storage.samples import SampleStore

    config = StorageConfig(
        store_samples=True, sample_rate=1.0,
        redaction=RedactionConfig(patterns=(RedactionPattern("project", r"Project \w+", "[PROJECT]"),)),
    )
    store = SampleStore(tmp_path, config)
    now = time.time()
    ex = exchange(id="e1", started_at=now, question="Is Project Falcon late? mail bob@corp.com", answer="yes")
    store.consume(Evaluation(ex, (Finding("hallucination_risk", 0.9, "flagged", detector="h"),)))
    store.close()
    rows = SampleStore(tmp_path, config).samples(now - 10, now + 10, 10)
    assert rows and rows[0]["question"] == "Is [PROJECT] late? mail [EMAIL]"
