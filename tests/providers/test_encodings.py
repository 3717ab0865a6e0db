"""Captured bodies that are compressed, cut at the capture limit, or use CRLF event separators."""

from __future__ import annotations

import gzip
import json

from genai_sre.config import LabelsConfig, UpstreamConfig
from genai_sre.providers import ExchangeParser
from genai_sre.providers.sse import iter_events
from tests.factories import capture

ANSWER = {
    "id": "c",
    "model": "m",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Paris."}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2},
}


PARSER = ExchangeParser((UpstreamConfig(name="up", url="http://u"),), LabelsConfig())


def test_gzip_answers_are_decoded_for_scoring() -> None:
    ex = PARSER.parse(
        capture(response_body=gzip.compress(json.dumps(ANSWER).encode()), response_headers={"content-encoding": "gzip"})
    )
    assert ex.answer == "Paris." and ex.error is None and ex.usage.output_tokens == 2


def test_a_body_cut_at_the_capture_limit_is_not_an_error() -> None:
    cut = capture(response_body=json.dumps(ANSWER).encode()[:40], response_headers={}, response_truncated=True)
    ex = PARSER.parse(cut)
    assert ex.error is None and ex.ok and ex.answer == ""


def test_model_version_from_the_response_header() -> None:
    ex = PARSER.parse(capture(response=ANSWER, response_headers={"x-model-version": "v7"}))
    assert ex.labels["model_version"] == "v7"


def test_crlf_and_lf_separated_events_in_one_stream() -> None:
    body = b"data: 1\r\n\r\ndata: 2\n\nevent: x\ndata: 3\r\n\r\ndata: partial"
    events = list(iter_events(body))
    assert [e.data for e in events] == ["1", "2", "3"] and events[2].event == "x"
    assert events[-1].end == body.index(b"data: partial")
