"""Every metric genai-sre exports, defined once.

`METRICS` is the single table of names, types, units, labels and buckets. The
Prometheus instruments (`Metrics`) and the OpenTelemetry instruments are both
built from it, so `/metrics` and OTLP never disagree, and `docs/metrics.md` is
checked against it by a test.

Names: the OpenTelemetry GenAI metrics keep their semantic-convention names in
OTLP and take the Prometheus form (dots to underscores, unit suffix) on
`/metrics`; ours start with `genai_sre_`. Label values are bounded: routes,
models, tenants and group values outside the configured allow-lists become
`other`, and no label ever carries free text or a user id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import prometheus_client
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as gm
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ATTRIBUTION", "METRICS", "MetricSpec", "Metrics", "spec"]

# `_created` series double the counters and histograms and carry nothing a dashboard reads.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

Kind = Literal["counter", "histogram", "gauge"]

# OpenTelemetry GenAI advisory buckets.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.0, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
OVERHEAD_BUCKETS = (0.00005, 0.0001, 0.0002, 0.0003, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1)
SCORE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
FAST_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)


@dataclass(frozen=True)
class MetricSpec:
    """One metric. `name` is the Prometheus name without `_total`; `otel_name` the OTLP name."""

    name: str
    kind: Kind
    description: str
    labels: tuple[str, ...] = ()
    unit: str = ""
    buckets: tuple[float, ...] = ()
    otel_name: str | None = None
    # True: exposed by a custom Collector that reads its source at scrape time (Metrics builds no instrument).
    collected: bool = False

    @property
    def exposed_name(self) -> str:
        return f"{self.name}_total" if self.kind == "counter" else self.name


_OP = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model")
# bounded who-for labels (genai_sre.telemetry.attribution): `none` without the header, `other` past the allow-list
ATTRIBUTION = ("tenant", "app")

METRICS: tuple[MetricSpec, ...] = (
    # --- the request path (inline, O(1) per request) --------------------------------------------
    MetricSpec(
        "genai_sre_requests",
        "counter",
        "Requests, by upstream, route, model, status class (2xx..5xx; `disconnect`: the client went away "
        "first), tenant and app. Requests the sidecar refused itself have upstream `none`.",
        ("upstream", "route", "model", "status_class", *ATTRIBUTION),
        collected=True,
    ),
    MetricSpec(
        "genai_sre_upstream_errors",
        "counter",
        "Requests that failed at the transport (timeout, connect, cut, bad_response).",
        ("upstream", "route", "error_type"),
        collected=True,
    ),
    MetricSpec(
        "genai_sre_refused_requests",
        "counter",
        "Requests and connections the sidecar refused or closed itself before forwarding, by reason "
        "(bad_request_target, body_too_large, headers_too_large, header_timeout, body_timeout, connect, ...).",
        ("reason",),
        collected=True,
    ),
    MetricSpec(
        "genai_sre_proxy_overhead_seconds",
        "histogram",
        "Time the sidecar itself adds to a request: before the upstream call plus after its response headers.",
        ("upstream", "route"),
        "s",
        OVERHEAD_BUCKETS,
        collected=True,
    ),
    MetricSpec(
        "genai_sre_in_flight_requests",
        "gauge",
        "Requests being forwarded now.",
        ("upstream",),
        collected=True,
    ),
    MetricSpec(
        "genai_sre_upstream_resolvable",
        "gauge",
        "1 while the upstream's host name resolves (looked up in the background), else 0. Forwarding keeps "
        "using the last good addresses through a DNS failure.",
        ("upstream",),
        collected=True,
    ),
    # --- fail-over to a fallback upstream (genai_sre.proxy.failover, per proxy worker) ----------
    MetricSpec(
        "genai_sre_failover_active",
        "gauge",
        "1 while requests for this upstream go to its fallback (breaker open or an SLO page holds it), else 0; "
        "with several proxy workers, 1 when any of them is failed over.",
        ("upstream",),
        collected=True,
    ),
    MetricSpec(
        "genai_sre_failover",
        "counter",
        "Fail-overs of an upstream to its fallback, by reason: `breaker` (consecutive failures) or `slo:<name>` "
        "(a page of an SLO scoped to the upstream). Counted per proxy worker.",
        ("upstream", "reason"),
        collected=True,
    ),
    MetricSpec(
        "genai_sre_failover_probes",
        "counter",
        "Requests mirrored to a failed-over upstream as half-open probes, by outcome (ok, error).",
        ("upstream", "outcome"),
        collected=True,
    ),
    MetricSpec(
        "genai_sre_failover_retries",
        "counter",
        "Requests that failed on an upstream before any byte reached the client and were resent to its fallback "
        "(retry_before_first_byte), by the primary's failure (5xx, connect, timeout, cut, bad_response).",
        ("upstream", "reason"),
        collected=True,
    ),
    MetricSpec(
        "genai_sre_proxy_captures_dropped",
        "counter",
        "Captures a proxy worker could not hand to the agent (channel full, agent down), by reason.",
        ("reason",),
        collected=True,
    ),
    MetricSpec(
        "genai_sre_slo_events",
        "counter",
        "SLI events: one per exchange (or time slice) an SLO counts, good or bad. The input of every SLO rule.",
        ("slo", "outcome"),
    ),
    MetricSpec(
        "genai_sre_slo_snapshot_failures",
        "counter",
        "SLO engine snapshots (`<data_dir>/slo.db`) that failed to write; retried at the next evaluation. "
        "Alerts do not depend on them; a restart meanwhile resumes from the last good snapshot.",
    ),
    MetricSpec(
        "gen_ai_server_request_duration_seconds",
        "histogram",
        "Time from request received to last byte of the response (gen_ai.server.request.duration).",
        (*_OP, "error_type"),
        "s",
        DURATION_BUCKETS,
        gm.GEN_AI_SERVER_REQUEST_DURATION,
        collected=True,
    ),
    MetricSpec(
        "gen_ai_server_time_to_first_token_seconds",
        "histogram",
        "Time from request received to the first content token (gen_ai.server.time_to_first_token).",
        _OP,
        "s",
        TTFT_BUCKETS,
        gm.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN,
    ),
    MetricSpec(
        "gen_ai_server_time_per_output_token_seconds",
        "histogram",
        "(duration - TTFT) / (output tokens - 1) (gen_ai.server.time_per_output_token).",
        _OP,
        "s",
        TPOT_BUCKETS,
        gm.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN,
    ),
    # --- the sidecar as a client of the LLM API, from the parsed exchange --------------------------
    MetricSpec(
        "gen_ai_client_operation_duration_seconds",
        "histogram",
        "The sidecar's call to the LLM API: request sent upstream to last byte (gen_ai.client.operation.duration).",
        (*_OP, "error_type"),
        "s",
        DURATION_BUCKETS,
        gm.GEN_AI_CLIENT_OPERATION_DURATION,
    ),
    MetricSpec(
        "gen_ai_client_token_usage",
        "histogram",
        "Tokens per request as the upstream reported them, by type input/output (gen_ai.client.token.usage); "
        "estimated counts are never recorded here.",
        (*_OP, "gen_ai_token_type"),
        "{token}",
        TOKEN_BUCKETS,
        gm.GEN_AI_CLIENT_TOKEN_USAGE,
    ),
    # --- attribution: tokens and spend per model, tenant and app --------------------------------
    MetricSpec(
        "genai_sre_tokens",
        "counter",
        "Tokens by model, tenant, app and type: input and output (totals), cache_read, cache_write (parts of "
        "input), reasoning (part of output); source is usage (reported by the upstream) or estimated "
        "(counted offline, only with telemetry.estimate_tokens).",
        ("model", *ATTRIBUTION, "token_type", "source"),
        "{token}",
    ),
    MetricSpec(
        "genai_sre_cost_usd",
        "counter",
        "Spend in US dollars by model, tenant and app: token usage times the price table (telemetry.prices); "
        "source as for genai_sre_tokens_total.",
        ("model", *ATTRIBUTION, "source"),
        "USD",
    ),
    MetricSpec(
        "genai_sre_usage_requests",
        "counter",
        "Exchanges by model, tenant, app and pricing: priced, unpriced (model not in the price table, never "
        "guessed) or no_usage (the upstream reported no token usage). Cost per request: cost / priced.",
        ("model", *ATTRIBUTION, "pricing"),
    ),
    # --- the pipeline --------------------------------------------------------------------------
    MetricSpec("genai_sre_pipeline_captures", "counter", "Captures offered to the pipeline queue."),
    MetricSpec(
        "genai_sre_pipeline_dropped",
        "counter",
        "Captures dropped before scoring, by reason (queue_full, parse_error).",
        ("reason",),
    ),
    MetricSpec("genai_sre_pipeline_queue_depth", "gauge", "Captures waiting in the pipeline queue."),
    MetricSpec(
        "genai_sre_pipeline_processing_seconds",
        "histogram",
        "Time to parse and score one exchange.",
        (),
        "s",
        FAST_BUCKETS,
    ),
    MetricSpec(
        "genai_sre_detector_runs",
        "counter",
        "Detector runs by outcome: scored, failed, timeout, sampled_out, over_budget.",
        ("detector", "outcome"),
    ),
    MetricSpec(
        "genai_sre_detector_scored_ratio",
        "gauge",
        "Share of exchanges each detector actually scored (recent window).",
        ("detector",),
    ),
    MetricSpec(
        "genai_sre_detector_duration_seconds",
        "histogram",
        "Time a detector took per exchange.",
        ("detector",),
        "s",
        FAST_BUCKETS,
    ),
    MetricSpec(
        "genai_sre_evaluation_score",
        "histogram",
        "Detector scores in [0, 1] (gen_ai.evaluation.result score values).",
        ("detector", "gen_ai_evaluation_name", "route", "model"),
        "",
        SCORE_BUCKETS,
    ),
    MetricSpec(
        "genai_sre_findings",
        "counter",
        "Findings by detector, evaluation name and label.",
        ("detector", "gen_ai_evaluation_name", "label", "route", "model", *ATTRIBUTION),
    ),
    MetricSpec("genai_sre_stored_samples", "counter", "Exchanges written to the evidence store (redacted)."),
    MetricSpec(
        "genai_sre_evidence_dropped",
        "counter",
        "Exchanges the evidence store did not keep, by reason (queue_full, write_failed).",
        ("reason",),
    ),
    # --- OTLP export (genai_sre.telemetry.otlp) -------------------------------------------------
    MetricSpec(
        "genai_sre_otlp_exported", "counter",
        "Items exported by OTLP: signal=traces counts request traces (server + upstream span), "
        "signal=metrics counts metric exports.",
        ("signal",),
    ),
    MetricSpec(
        "genai_sre_otlp_dropped", "counter",
        "Items not exported by OTLP, by signal and reason (queue_full, export_failed, build_error, shutdown).",
        ("signal", "reason"),
    ),
    # --- SLO engine state, read at scrape time (genai_sre.slo.collector) ------------------------
    MetricSpec(
        "genai_sre_slo_error_ratio", "gauge", "In-process SLI error ratio per SLO and window (absent: no events).",
        ("slo", "window"), collected=True,
    ),
    MetricSpec(
        "genai_sre_slo_burn_rate", "gauge", "In-process error budget burn rate per SLO and window.",
        ("slo", "window"), collected=True,
    ),
    MetricSpec(
        "genai_sre_slo_window_events", "gauge", "SLI events the in-process engine holds per SLO and window.",
        ("slo", "window"), collected=True,
    ),
    MetricSpec(
        "genai_sre_slo_error_budget_remaining_ratio", "gauge",
        "Share of the period's error budget left (1 untouched, 0 spent, negative overspent).", ("slo",),
        collected=True,
    ),
    MetricSpec("genai_sre_slo_objective_ratio", "gauge", "SLO objective as a ratio.", ("slo",), collected=True),
    MetricSpec(
        "genai_sre_slo_alert_firing", "gauge", "1 while the in-process burn-rate alert of a severity fires.",
        ("slo", "severity"), collected=True,
    ),
    # --- fairness across user groups (detectors.bias) ------------------------------------------
    MetricSpec(
        "genai_sre_fairness_disparity", "gauge",
        "Widest gap of an outcome metric between groups of a sensitive attribute over the sliding window "
        "(refusal/risk: rate or score difference; sentiment: VADER difference; length/latency: relative).",
        ("attribute", "metric"),
    ),
    MetricSpec(
        "genai_sre_fairness_disparity_ratio", "gauge",
        "Smallest over largest group value of an outcome metric (fairlearn ratio; 1 is parity).",
        ("attribute", "metric"),
    ),
    MetricSpec(
        "genai_sre_fairness_group_outcome", "gauge",
        "Outcome per group over the sliding window: refusal rate or mean of sentiment, length, latency, risk.",
        ("attribute", "group", "metric"),
    ),
    MetricSpec(
        "genai_sre_fairness_drift_psi", "gauge",
        "Population stability index of a group's outcome distribution against its reference (trailing day or pinned).",
        ("attribute", "group", "metric"),
    ),
    MetricSpec(
        "genai_sre_probe_disparity", "gauge",
        "Disparity between the counterfactual answers of one probe template (refusal, sentiment, length, embedding).",
        ("template", "metric"),
    ),
    MetricSpec(
        "genai_sre_probe_requests", "counter", "Counterfactual probe requests sent, by outcome (ok, error, budget).",
        ("outcome",),
    ),
    # --- self-consistency of answers without context (detectors.hallucination.consistency) -------
    MetricSpec(
        "genai_sre_self_consistency_checks", "counter",
        "Self-consistency checks of no-context answers, by outcome (checked, failed, skipped_budget, skipped_busy).",
        ("outcome",),
    ),
    MetricSpec(
        "genai_sre_self_consistency_requests", "counter",
        "Extra upstream requests sent by self-consistency checks, by outcome (ok, error).",
        ("outcome",),
    ),
    # --- alert routing and delivery (genai_sre.alerting) ---------------------------------------
    MetricSpec("genai_sre_alerts_received", "counter", "Alerts submitted to the router, by status.", ("status",)),
    MetricSpec(
        "genai_sre_alerts_suppressed", "counter", "Firing alerts muted on arrival, by reason (silenced, inhibited).",
        ("reason",),
    ),
    MetricSpec(
        "genai_sre_alert_notifications", "counter", "Notifications delivered per receiver, by outcome (sent, failed).",
        ("receiver", "outcome"),
    ),
    MetricSpec("genai_sre_alert_delivery_retries", "counter", "Delivery attempts retried per receiver.", ("receiver",)),
    MetricSpec(
        "genai_sre_alert_delivery_duration_seconds", "histogram", "Time of one delivery attempt per receiver.",
        ("receiver",), "s", (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    ),
    # --- incidents (genai_sre.incidents) -------------------------------------------------------
    MetricSpec("genai_sre_incidents_opened", "counter", "Incidents opened, by severity.", ("severity",)),
    MetricSpec("genai_sre_incidents_open", "gauge", "Incidents not yet resolved."),
    MetricSpec(
        "genai_sre_incident_time_to_detect_seconds", "histogram",
        "Page time minus the start of the first 5-minute window burning above 1x.", (), "s",
        (60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400),
    ),
    MetricSpec(
        "genai_sre_incident_time_to_acknowledge_seconds", "histogram", "Incident opened to first acknowledgement.",
        (), "s", (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400),
    ),
    MetricSpec(
        "genai_sre_incident_time_to_resolve_seconds", "histogram", "Incident opened to resolved.", (), "s",
        (300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200),
    ),
    MetricSpec(
        "genai_sre_change_failure_ratio", "gauge",
        "DORA change failure rate per model: deploy markers followed within 1h by a page incident for that model.",
        ("model",),
    ),
    MetricSpec(
        "genai_sre_failed_deployment_recovery_seconds", "gauge",
        "DORA failed deployment recovery time per model: mean of deploy marker to incident resolved.", ("model",),
    ),
)

_BY_NAME = {m.name: m for m in METRICS}


def spec(name: str) -> MetricSpec:
    return _BY_NAME[name]


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status <= 599 else "error"


class Metrics:
    """The Prometheus instruments of `METRICS`, on an explicit registry (never the global one)."""

    def __init__(
        self, registry: CollectorRegistry | None = None, specs: Sequence[MetricSpec] = METRICS, process: bool = True
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        if process:  # process_* (memory, CPU, open files), python_info and python_gc_* of the sidecar itself
            for collector in (
                prometheus_client.ProcessCollector,
                prometheus_client.PlatformCollector,
                prometheus_client.GCCollector,
            ):
                try:
                    collector(registry=self.registry)
                except ValueError:  # already registered on this registry
                    pass
        self._instruments: dict[str, Counter | Histogram | Gauge] = {}
        for s in specs:
            if s.collected:
                continue
            name = s.name[:-6] if s.kind == "counter" and s.name.endswith("_total") else s.name
            if s.kind == "counter":
                self._instruments[s.name] = Counter(name, s.description, s.labels, registry=self.registry)
            elif s.kind == "histogram":
                self._instruments[s.name] = Histogram(
                    name,
                    s.description,
                    s.labels,
                    registry=self.registry,
                    buckets=s.buckets or Histogram.DEFAULT_BUCKETS,
                )
            else:
                self._instruments[s.name] = Gauge(name, s.description, s.labels, registry=self.registry)

    def counter(self, name: str) -> Counter:
        inst = self._instruments[name]
        assert isinstance(inst, Counter)
        return inst

    def histogram(self, name: str) -> Histogram:
        inst = self._instruments[name]
        assert isinstance(inst, Histogram)
        return inst

    def gauge(self, name: str) -> Gauge:
        inst = self._instruments[name]
        assert isinstance(inst, Gauge)
        return inst
