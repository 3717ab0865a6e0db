"""Speed of the hallucination detector with its default configuration.

    python bench/hallucination_speed.py [--n 400]

Workload: RAGTruth test answers cut to about 100 tokens (75 words), each
against its own context padded to about 1,000 tokens (750 words) with other
contexts, so the context-index cache never hits. Prints:

- scorer throughput in one process, and with two worker processes (2 cores);
- the detector at 10 answers/s (open loop): per-answer latency p50/p99;
- a burst of `n` concurrent `detect()` calls with the thread and the process
  executor: throughput and the worst event-loop lag seen by a 1 ms ticker;
- guard mode (`score_text`, one answer, synchronous): p50/p99.

`--cross-encoder` measures the second stage instead (needs torch, onnxruntime
for the ONNX rows): the cross-encoder per answer with torch and ONNX Runtime
(fp32 and int8, 1 and 2 threads), the cascade's scorer throughput and CPU per
answer with the shipped band, and the detector with the cascade at 10 answers/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detectors.hallucination import HallucinationDetector, score_text  # noqa: E402
from detectors.hallucination.scorer import HallucinationScorer, ScoreInput  # noqa: E402
from genai_sre.evaluation import load_dataset  # noqa: E402
from genai_sre.events import ContextPart, Exchange  # noqa: E402

DATA = ROOT / "bench" / "data" / "hallucination" / "ragtruth.jsonl.gz"


def workload(n: int, tag: str) -> list[ScoreInput]:
    rows = load_dataset(DATA, split="test")
    out: list[ScoreInput] = []
    for i in range(n):
        r = rows[i % len(rows)]
        words = r.context.split()
        k = 1
        while len(words) < 750:
            words += rows[(i + k) % len(rows)].context.split()
            k += 1
        context = f"[{tag}-{i}] " + " ".join(words[:750])  # unique: no cache hits
        out.append(ScoreInput(context, r.question, " ".join(r.answer.split()[:75])))
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _score_chunk(items: list[ScoreInput]) -> int:
    scorer = HallucinationScorer()
    for start in range(0, len(items), 32):
        scorer.score_batch(items[start : start + 32])
    return len(items)


def scorer_throughput(items: list[ScoreInput]) -> None:
    scorer = HallucinationScorer()
    scorer.score_batch(items[:1])
    t, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(items), 32):
        scorer.score_batch(items[start : start + 32])
    one = len(items) / (time.perf_counter() - t)
    cpu_ms = (time.process_time() - cpu) / len(items) * 1000
    print(f"scorer CPU time {cpu_ms:.2f} ms/answer = {1000 / cpu_ms:.0f} answers/s per free core (load-independent)")
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_score_chunk, [items[:2], items[2:4]]))  # warm both workers
        t = time.perf_counter()
        half = len(items) // 2
        done = sum(pool.map(_score_chunk, [items[:half], items[half:]]))
        two = done / (time.perf_counter() - t)
    print(f"scorer, batches of 32, cold context cache: 1 process {one:.0f} answers/s; 2 processes {two:.0f} answers/s")


def exchange(item: ScoreInput, i: int) -> Exchange:
    return Exchange(
        id=str(i), started_at=0.0, provider="openai", operation="chat", route="/v1/chat/completions",
        upstream="bench", status=200, stream=False, context=(ContextPart("document", item.context),),
        question=item.question, answer=item.answer,
    )  # fmt: skip


async def open_loop(
    items: list[ScoreInput], rate: float, seconds: float, label: str = "detector", **options: object
) -> None:
    """`detect()` latency at a fixed arrival rate, with the detector built from `options`."""
    det = HallucinationDetector(**options)
    await det.detect(exchange(items[0], 0))
    latencies: list[float] = []

    async def one(i: int) -> None:
        t = time.perf_counter()
        await det.detect(exchange(items[i % len(items)], i))
        latencies.append((time.perf_counter() - t) * 1000)

    tasks = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    await det.aclose()
    print(
        f"{label} at {rate:.0f} answers/s for {seconds:.0f} s: p50 {statistics.median(latencies):.1f} ms, "
        f"p99 {pct(latencies, 99):.1f} ms, max {max(latencies):.1f} ms"
    )


async def burst(items: list[ScoreInput], executor: str) -> None:
    det = HallucinationDetector(executor=executor)  # type: ignore[arg-type]
    await det.detect(exchange(items[0], 0))
    lags: list[float] = []
    stop = False

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while not stop:
            t = loop.time()
            await asyncio.sleep(0.001)
            lags.append((loop.time() - t - 0.001) * 1000)

    tick = asyncio.create_task(ticker())
    t = time.perf_counter()
    await asyncio.gather(*(det.detect(exchange(it, i)) for i, it in enumerate(items)))
    elapsed = time.perf_counter() - t
    stop = True
    await tick
    await det.aclose()
    print(
        f"detector burst of {len(items)}, executor={executor}: {len(items) / elapsed:.0f} answers/s "
        f"in {det.batches} batches; event-loop lag p99 {pct(lags, 99):.1f} ms, max {max(lags):.1f} ms"
    )


def guard(items: list[ScoreInput]) -> None:
    score_text(items[0].context, items[0].question, items[0].answer)
    times = []
    for it in items[:200]:
        t = time.perf_counter()
        score_text(it.context, it.question, it.answer)
        times.append((time.perf_counter() - t) * 1000)
    print(
        f"guard score_text (one answer, cold cache): p50 {statistics.median(times):.2f} ms, p99 {pct(times, 99):.2f} ms"
    )


def cross_encoder_speed(items: list[ScoreInput], path: str | None) -> None:
    import tempfile

    import torch

    from detectors.hallucination.cascade import Cascade
    from detectors.hallucination.cross_encoder import CrossEncoder

    triples = [(it.context, it.question, it.answer) for it in items[:48]]
    ce = CrossEncoder(path)
    t = time.perf_counter()
    encoded = [ce.encode(triples[k : k + 8]) for k in range(0, len(triples), 8)]
    encode_ms = (time.perf_counter() - t) / len(triples) * 1000
    print(f"cross-encoder input building (evidence selection, tokenizer): {encode_ms:.1f} ms/answer")

    def timed(label: str, run: object) -> None:
        assert callable(run)
        run(encoded[0])
        t, cpu = time.perf_counter(), time.process_time()
        for enc in encoded:
            run(enc)
        wall = (time.perf_counter() - t) / len(triples) * 1000
        cpu_ms = (time.process_time() - cpu) / len(triples) * 1000
        print(f"  {label}: {wall:.1f} ms/answer wall ({1000 / wall:.0f} answers/s), {cpu_ms:.1f} ms CPU")

    quantized = torch.ao.quantization.quantize_dynamic(ce.net, {torch.nn.Linear}, dtype=torch.qint8)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        with torch.inference_mode():
            timed(f"torch fp32, {threads} thread(s), batch 8",
                  lambda e: ce.net(e["input_ids"], e["attention_mask"], e["token_type_ids"]))  # fmt: skip
            timed(f"torch int8 (dynamic), {threads} thread(s), batch 8",
                  lambda e: quantized(e["input_ids"], e["attention_mask"], e["token_type_ids"]))  # fmt: skip
    try:
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        print("  onnxruntime not installed: no ONNX rows")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            model = f"{tmp}/ce.onnx"
            e = encoded[0]
            torch.onnx.export(
                ce.net, (e["input_ids"], e["attention_mask"], e["token_type_ids"]), model, dynamo=False,
                input_names=["ids", "mask", "types"], output_names=["pair", "tokens"],
                dynamic_axes={n: {0: "batch", 1: "length"} for n in ("ids", "mask", "types")},
            )  # fmt: skip
            quantize_dynamic(model, f"{tmp}/ce8.onnx", weight_type=QuantType.QInt8)
            for name, file in (("fp32", model), ("int8", f"{tmp}/ce8.onnx")):
                for threads in (1, 2):
                    opts = ort.SessionOptions()
                    opts.intra_op_num_threads = threads
                    sess = ort.InferenceSession(file, opts, providers=["CPUExecutionProvider"])
                    timed(f"onnxruntime {name}, {threads} thread(s), batch 8",
                          lambda e, s=sess: s.run(None, {"ids": e["input_ids"].numpy(),
                                                         "mask": e["attention_mask"].numpy(),
                                                         "types": e["token_type_ids"].numpy()}))  # fmt: skip
    torch.set_num_threads(1)
    cascade = Cascade(path, threads=1)
    scorer = HallucinationScorer(cascade=cascade)
    scorer.score_batch(items[:1])
    t, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(items), 32):
        scorer.score_batch(items[start : start + 32])
    wall = time.perf_counter() - t
    cpu_s = time.process_time() - cpu
    print(
        f"cascade scorer (band width {cascade.width:.3f} log-odds): {cascade.sent - 1} of {len(items)} answers "
        f"sent ({(cascade.sent - 1) / len(items):.0%}); {len(items) / wall:.0f} answers/s in one process, "
        f"{cpu_s / len(items) * 1000:.1f} ms CPU/answer = {len(items) / cpu_s * 2:.0f} answers/s on 2 free cores"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=400, help="answers in the workload (default 400)")
    parser.add_argument("--cross-encoder", action="store_true", help="measure the second stage instead")
    parser.add_argument("--cross-encoder-path", default=None, help="artefact (default: the shipped one)")
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    if args.cross_encoder:
        cross_encoder_speed(workload(args.n, "cross"), args.cross_encoder_path)
        asyncio.run(
            open_loop(
                workload(args.n, "cascade-open"),
                10,
                10,
                "detector with the cascade",
                cross_encoder="cascade",
                cross_encoder_path=args.cross_encoder_path,
            )
        )
        return
    items = workload(args.n, "scorer")
    scorer_throughput(items)
    asyncio.run(open_loop(workload(args.n, "open"), rate=10, seconds=10))
    for executor in ("thread", "process"):
        asyncio.run(burst(workload(args.n, executor), executor))
    guard(workload(200, "guard"))


if __name__ == "__main__":
    main()
