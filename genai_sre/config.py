"""The sidecar's configuration, every key documented in the bundled `configs/sidecar.yaml`.

`load_config(path)` lays `path` over the bundled file, applies the `GENAI_SRE_*`
variables and the flags (`genai_sre.config_layers` has the order and the
data-directory rule), substitutes `${VAR:-default}`, validates and returns a
frozen `Config`; every error names the file, the line and the key (or the
variable). Secrets (admin token, receiver keys, upstream credentials for probes)
come only from environment variables whose *names* the config holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from genai_sre.errors import ConfigError
from genai_sre.schema import Range, build, read_document

__all__ = [
    "AdminConfig",
    "AlertingSettings",
    "Config",
    "DetectorConfig",
    "FallbackConfig",
    "GuardConfig",
    "IncidentsSettings",
    "LabelsConfig",
    "LoggingConfig",
    "ModelPrice",
    "OTLPConfig",
    "PipelineConfig",
    "PricesConfig",
    "ProxyConfig",
    "RedactionConfig",
    "RedactionPattern",
    "SLOSettings",
    "StorageConfig",
    "TelemetryConfig",
    "UpstreamConfig",
    "load_config",
]

Provider = Literal["auto", "openai", "azure", "anthropic", "vllm", "llamacpp"]

# Numeric keys and their ranges (checked by `check-config` and at start, with file:line: key).
Port = Annotated[int, Range(0, 65535)]  # 0: any free port
Seconds = Annotated[float, Range(above=0, max=30 * 86400)]
Bytes = Annotated[int, Range(1, 1 << 40)]
Share = Annotated[float, Range(0, 1)]
Count = Annotated[int, Range(1, 1_000_000_000)]


@dataclass(frozen=True)
class FallbackConfig:
    """Opt-in fail-over of one upstream to another (docs/self-healing.md)."""

    upstream: str  # the fallback upstream's name
    model: str | None = None  # the `model` sent to the fallback instead of the client's
    trip_after_failures: Annotated[int, Range(1, 10_000)] = 5  # consecutive 5xx / connect / timeout / cut
    on_slo_page: bool = True  # a page of an SLO scoped to this upstream alone also fails over
    probe_interval_s: Annotated[float, Range(above=0, max=3600)] = 5.0  # while failed over: one probe per interval
    recover_after_successes: Annotated[int, Range(1, 10_000)] = 3  # consecutive good probes before failing back
    retry_before_first_byte: bool = False  # retry a request that failed on this upstream, before any byte, once


@dataclass(frozen=True)
class UpstreamConfig:
    name: str
    url: str
    provider: Provider = "auto"
    path_prefixes: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    connect_timeout_s: Seconds = 5.0
    read_timeout_s: Seconds = 300.0
    total_timeout_s: Seconds | None = None
    ca_bundle: str | None = None
    verify_tls: bool = True
    max_connections: Annotated[int, Range(1, 100_000)] = 1000
    idle_timeout_s: Seconds = 15.0  # keep-alive connections to the upstream unused this long are closed
    fallback: FallbackConfig | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream {self.name!r}: url must be http(s)://host[:port][/base], got {self.url!r}")
        for prefix in self.path_prefixes:
            if not prefix.startswith("/"):
                raise ValueError(f"upstream {self.name!r}: path prefix {prefix!r} must start with '/'")


@dataclass(frozen=True)
class GuardConfig:
    """Opt-in guard mode: score non-streaming answers before they reach the client."""

    enabled: bool = False
    routes: Mapping[str, Annotated[float, Range(0, 1)]] = field(default_factory=dict)  # route -> risk threshold
    action: Literal["header", "refuse"] = "header"
    scorer: str = "hallucination"  # entry point in genai_sre.guard_scorers, or "module:attr"
    refusal_message: str = "I can't give a reliable answer to that from the information provided."


@dataclass(frozen=True)
class ProxyConfig:
    host: str = "127.0.0.1"
    port: Port = 8788
    max_body_bytes: Bytes = 10 * 1024 * 1024
    capture_limit_bytes: Bytes = 1024 * 1024
    max_header_bytes: Annotated[int, Range(1024, 1 << 20)] = 64 * 1024
    max_target_bytes: Annotated[int, Range(256, 1 << 20)] = 16 * 1024
    header_timeout_s: Annotated[float, Range(above=0, max=300)] = 15.0
    body_timeout_s: Annotated[float, Range(above=0, max=3600)] = 30.0
    keepalive_timeout_s: Annotated[float, Range(above=0, max=3600)] = 75.0
    drain_s: Annotated[float, Range(0, 3600)] = 5.0
    shutdown_grace_s: Annotated[float, Range(0, 3600)] = 30.0
    request_id_header: str = "x-request-id"
    guard: GuardConfig = field(default_factory=GuardConfig)


@dataclass(frozen=True)
class AdminConfig:
    host: str = "127.0.0.1"
    port: Port = 9464
    token_env: str = "GENAI_SRE_ADMIN_TOKEN"
    read_token_env: str = "GENAI_SRE_ADMIN_READ_TOKEN"


@dataclass(frozen=True)
class LabelsConfig:
    """Bounded label values: anything not on an allow-list is exported as `other`."""

    routes: tuple[str, ...] = (
        "/v1/chat/completions",
        "/v1/responses",
        "/v1/embeddings",
        "/v1/messages",
        "/v1/completions",
    )
    models: tuple[str, ...] = ()
    tenant_header: str = "x-tenant"
    app_header: str = "x-app"
    conversation_header: str = "x-conversation-id"
    tenants: tuple[str, ...] = ()
    apps: tuple[str, ...] = ()
    max_values: Annotated[int, Range(1, 1000)] = 20  # label values per attribute without an allow-list
    group_headers: Mapping[str, str] = field(default_factory=dict)
    group_metadata: tuple[str, ...] = ()
    group_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    model_version_header: str = "x-model-version"
    session_header: str = "x-session-id"


@dataclass(frozen=True)
class PipelineConfig:
    queue_size: Count = 10000
    queue_max_bytes: Bytes = 256 * 1024 * 1024
    workers: Annotated[int, Range(1, 64)] = 1
    cpu_budget: Annotated[float, Range(above=0, max=64)] = 0.9
    cpu_budget_under_load: Annotated[float, Range(above=0, max=64)] = 0.1
    busy_in_flight: Count = 16
    detector_timeout_s: Seconds = 5.0
    failure_log_interval_s: Seconds = 60.0
    batch_size: Annotated[int, Range(1, 10_000)] = 32


@dataclass(frozen=True)
class DetectorConfig:
    name: str
    type: str
    options: Mapping[str, Any] = field(default_factory=dict)
    sample_rate: Share = 1.0
    timeout_s: Seconds | None = None
    cpu_budget: Annotated[float, Range(above=0, max=64)] | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample_rate <= 1.0:
            raise ValueError(f"detector {self.name!r}: sample_rate must be within [0, 1]")


@dataclass(frozen=True)
class RedactionPattern:
    name: str
    pattern: str
    replacement: str = "[REDACTED]"


@dataclass(frozen=True)
class RedactionConfig:
    """Redaction of stored and exported text: the built-in patterns less `disable`, then `patterns`."""

    disable: tuple[str, ...] = ()
    patterns: tuple[RedactionPattern, ...] = ()


@dataclass(frozen=True)
class StorageConfig:
    data_dir: str = ".genai-sre"
    store_samples: bool = False
    sample_rate: Share = 0.1
    retention_days: Annotated[float, Range(above=0, max=3650)] = 7.0
    max_samples: Count = 100000
    redaction: RedactionConfig = field(default_factory=RedactionConfig)


@dataclass(frozen=True)
class SLOSettings:
    file: str | None = "slos.yaml"
    evaluate: Literal["inprocess", "prometheus"] = "inprocess"
    snapshot_interval_s: Annotated[float, Range(above=0, max=3600)] = 10.0
    evaluation_interval_s: Annotated[float, Range(above=0, max=3600)] = 15.0


@dataclass(frozen=True)
class AlertingSettings:
    file: str | None = "alerting.yaml"


@dataclass(frozen=True)
class IncidentsSettings:
    role: Literal["primary", "secondary", "off"] = "primary"
    # "" = SQLite in the data directory; postgresql://... = shared by several primaries.
    # Empty here falls back to $GENAI_SRE_INCIDENTS_URL (keep the password out of config files).
    store_url: str = ""
    retention_days: float = 400.0  # resolved incidents, annotations and ended silences older than this go

    def __post_init__(self) -> None:
        url = self.store_url.strip()
        if url and not url.startswith(("postgresql://", "postgres://", "sqlite:")):
            raise ValueError("store_url must be empty (SQLite in the data directory), sqlite:PATH or postgresql://...")
        if self.retention_days <= 0:
            raise ValueError("retention_days must be positive")


@dataclass(frozen=True)
class OTLPConfig:
    enabled: bool = False
    endpoint: str | None = None
    protocol: Literal["http/protobuf", "grpc"] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    service_name: str | None = None
    capture_content: bool = False
    export_metrics: bool = True
    max_queue_size: Count = 2048


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens. Unset cache and reasoning prices fall back to the input and output prices."""

    input: float
    output: float = 0.0
    cache_read: float | None = None
    cache_write: float | None = None
    reasoning: float | None = None

    def __post_init__(self) -> None:
        for name in ("input", "output", "cache_read", "cache_write", "reasoning"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"price {name} must not be negative, got {value}")


@dataclass(frozen=True)
class PricesConfig:
    """The price table: the one shipped with the package (`builtin`), a file, then `models`, later ones winning."""

    builtin: bool = True
    file: str | None = None
    models: Mapping[str, ModelPrice] = field(default_factory=dict)


@dataclass(frozen=True)
class TelemetryConfig:
    otlp: OTLPConfig = field(default_factory=OTLPConfig)
    estimate_tokens: bool = False  # count tokens offline when the upstream reports no usage (marked estimated)
    user_id: Literal["hashed", "omit"] = "hashed"  # the end user on spans: a keyed hash, or left out
    user_id_key_env: str = "GENAI_SRE_USER_ID_KEY"  # variable holding the key of that hash
    prices: PricesConfig = field(default_factory=PricesConfig)


@dataclass(frozen=True)
class LoggingConfig:
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = "json"


@dataclass(frozen=True)
class Config:
    version: Literal["genai-sre/v1"] = "genai-sre/v1"
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    upstreams: tuple[UpstreamConfig, ...] = ()
    admin: AdminConfig = field(default_factory=AdminConfig)
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    detectors: tuple[DetectorConfig, ...] = ()
    storage: StorageConfig = field(default_factory=StorageConfig)
    slo: SLOSettings = field(default_factory=SLOSettings)
    alerting: AlertingSettings = field(default_factory=AlertingSettings)
    incidents: IncidentsSettings = field(default_factory=IncidentsSettings)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    probes: str | None = None
    base_dir: str = "."

    def __post_init__(self) -> None:
        names = [u.name for u in self.upstreams]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"upstream names must be unique, repeated: {', '.join(dupes)}")
        _check_fallbacks(self.upstreams)
        dnames = [d.name for d in self.detectors]
        ddupes = sorted({n for n in dnames if dnames.count(n) > 1})
        if ddupes:
            raise ValueError(f"detector names must be unique, repeated: {', '.join(ddupes)}")

    def resolve(self, relative: str) -> Path:
        """A path from the config file, relative to the file's folder."""
        p = Path(relative)
        return p if p.is_absolute() else Path(self.base_dir) / p


def _check_fallbacks(upstreams: tuple[UpstreamConfig, ...]) -> None:
    """Fallbacks name known upstreams, never the upstream itself, and never form a cycle."""
    fallback = {u.name: u.fallback.upstream for u in upstreams if u.fallback is not None}
    names = {u.name for u in upstreams}
    for name, target in fallback.items():
        if target not in names:
            known = ", ".join(sorted(names))
            raise ValueError(f"upstream {name!r}: fallback.upstream {target!r} is not a configured upstream ({known})")
        if target == name:
            raise ValueError(f"upstream {name!r}: fallback.upstream cannot be the upstream itself")
    for start in fallback:
        path, node = [start], fallback[start]
        while node in fallback:
            if node in path:
                cycle = " -> ".join([*path[path.index(node):], node])
                raise ValueError(f"upstream fallbacks form a cycle: {cycle}")
            path.append(node)
            node = fallback[node]


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None, **overrides: Any) -> Config:
    """The sidecar config: the bundled file, `path` laid over it, `GENAI_SRE_*` variables, then `overrides`.

    The precedence and the data-directory rule are in `genai_sre.config_layers`. Every error
    names its file and line, or the variable it came from.
    """
    import os

    from genai_sre.bundled import bundled
    from genai_sre.config_layers import LayeredDocument, absolutize, apply_env, merge

    env = os.environ if environ is None else environ
    shipped = bundled("sidecar.yaml")
    layers = [read_document(shipped, "bundled config file", env)]
    data = absolutize(dict(layers[0].data), shipped.parent)
    base = str(shipped.parent)
    if path is not None:
        doc = read_document(path, "config file", env)
        layers.insert(0, doc)
        data = merge(Config, data, doc.data)
        base = str(Path(path).resolve().parent)
    env_paths = apply_env(data, env)
    storage = data.get("storage")
    data_dir = storage.get("data_dir") if isinstance(storage, dict) else None
    if isinstance(storage, dict) and isinstance(data_dir, str) and data_dir and not Path(data_dir).is_absolute():
        data["storage"] = {**storage, "data_dir": str(Path.cwd() / data_dir)}  # state goes where the command runs
    data["base_dir"] = base
    source = layers[0]
    merged = LayeredDocument(data=data, source=source.source, lines=source.lines, layers=tuple(layers),
                             env_paths=env_paths)
    config = build(Config, data, merged)
    return apply_overrides(config, **overrides) if overrides else config


def apply_overrides(
    config: Config, *, upstream: str | None = None, host: str | None = None, port: int | None = None
) -> Config:
    """Command-line flags override the file: `--upstream`, `--host`, `--port`."""
    from dataclasses import replace

    if upstream:
        first = config.upstreams[0] if config.upstreams else None
        try:
            up = replace(first, url=upstream) if first else UpstreamConfig(name="default", url=upstream)
        except ValueError as exc:
            raise ConfigError(f"--upstream: {exc}") from exc
        config = replace(config, upstreams=(up, *config.upstreams[1:]))
    if host or port:
        config = replace(
            config, proxy=replace(config.proxy, host=host or config.proxy.host, port=port or config.proxy.port)
        )
    return config
