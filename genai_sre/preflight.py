"""Checks that a whole configuration fits together, before anything starts.

- Every SLO that names a detector (a `quality` or `time_slice` SLI) names an
  enabled detector instance, and a finding that detector reports; otherwise the
  SLO would stay empty and nobody would be told. The error names both.
- Notes for the operator: a bias detector with no group attribute to compare is
  idle (said once, at start, and by `check-config`).

`check(config)` needs only the config and the SLO file. `check_findings(config)`
also imports each detector's class to read the finding names it declares (a
class attribute `finding_names`; detectors without one are not checked): it runs
where the detectors are loaded anyway (the agent, `check-config`), never in
the supervisor, which stays small.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from genai_sre.config import Config, DetectorConfig
from genai_sre.errors import ConfigError
from genai_sre.slo.spec import SLOFile, load_slos

__all__ = ["check", "check_findings", "declared_findings", "enabled_detectors", "idle_notes", "load_slo_file"]

DETECTOR_GROUP = "genai_sre.detectors"


def enabled_detectors(config: Config) -> list[DetectorConfig]:
    return [d for d in config.detectors if d.enabled]


def load_slo_file(config: Config) -> SLOFile | None:
    return load_slos(config.resolve(config.slo.file)) if config.slo.file else None


def _names(values: Iterable[str]) -> str:
    listed = ", ".join(sorted(values))
    return listed or "none"


def _where(config: Config) -> str:
    return str(config.resolve(config.slo.file)) if config.slo.file else "the SLO file"


def check(config: Config, slos: SLOFile | None = None) -> SLOFile | None:
    """Raise ConfigError when an SLO names a detector instance that is not configured and enabled."""
    slos = slos if slos is not None else load_slo_file(config)
    if slos is None:
        return None
    enabled = {d.name for d in enabled_detectors(config)}
    disabled = {d.name for d in config.detectors if not d.enabled}
    for slo in slos.slos:
        wanted = slo.sli.detector
        if wanted is None or wanted in enabled:
            continue
        state = "is disabled (enabled: false)" if wanted in disabled else "is not configured"
        raise ConfigError(
            f"{_where(config)}: SLO {slo.name!r} names detector {wanted!r}, which {state} "
            f"(enabled detectors: {_names(enabled)}); add it under `detectors:` in the sidecar config "
            f"or remove the SLO"
        )
    return slos


def declared_findings(detector: DetectorConfig) -> frozenset[str] | None:
    """The finding names a detector type declares (class attribute `finding_names`), or None when it declares none."""
    from genai_sre.plugins import resolve

    factory = resolve(DETECTOR_GROUP, detector.type)
    names = getattr(factory, "finding_names", None)
    if not isinstance(names, (tuple, list, frozenset, set)):
        return None
    return frozenset(str(n) for n in names)


def check_findings(
    config: Config,
    slos: SLOFile | None = None,
    findings_of: Callable[[DetectorConfig], frozenset[str] | None] = declared_findings,
) -> SLOFile | None:
    """`check()`, then: each SLO's finding is one its detector declares."""
    slos = check(config, slos)
    if slos is None:
        return None
    by_name = {d.name: d for d in enabled_detectors(config)}
    for slo in slos.slos:
        sli = slo.sli
        if sli.detector is None or sli.finding is None:
            continue
        detector = by_name[sli.detector]
        known = findings_of(detector)
        if known is not None and sli.finding not in known:
            raise ConfigError(
                f"{_where(config)}: SLO {slo.name!r} names finding {sli.finding!r} of detector {sli.detector!r} "
                f"(type {detector.type}), which reports only: {_names(known)}"
            )
    return slos


def idle_notes(config: Config) -> list[str]:
    """One line per enabled detector that cannot report anything with this config.

    A detector type says so through an optional static method `idle_reason(labels, options)`
    returning the reason or None; this imports the detector classes, so it runs where they are
    loaded anyway (the agent, `check-config`), never in the supervisor.
    """
    from genai_sre.plugins import resolve

    notes = []
    for d in enabled_detectors(config):
        reason = getattr(resolve(DETECTOR_GROUP, d.type), "idle_reason", None)
        why = reason(config.labels, d.options) if callable(reason) else None
        if why:
            notes.append(f"detector {d.name!r} ({d.type}) is idle: {why}")
    return notes
