"""`genai-sre rules`: Prometheus recording and alerting rules for the configured SLOs."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["register", "slo_file_path"]


def slo_file_path(slos: str | None, config: str | None) -> Path:
    """`--slos` if given, else the config's `slo.file` (the bundled `slos.yaml` without a config file)."""
    if slos:
        return Path(slos)
    from genai_sre.config import load_config
    from genai_sre.errors import ConfigError

    cfg = load_config(config)
    if not cfg.slo.file:
        raise ConfigError(f"{config or 'the config'}: slo.file is not set; pass --slos FILE")
    return cfg.resolve(cfg.slo.file)


def _source_name(path: Path) -> str:
    """How the generated files name their source: `configs/slos.yaml` for the bundled file, from any directory."""
    from genai_sre.bundled import bundled_dir

    try:
        return "configs/" + path.resolve().relative_to(bundled_dir()).as_posix()
    except (ValueError, OSError):
        return path.as_posix()


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("rules", help="generate Prometheus rules (recordings, burn-rate alerts) from the SLO file")
    p.add_argument("--slos", help="SLO file (default: the config's slo.file, else the bundled slos.yaml)")
    p.add_argument("--config", default=os.environ.get("GENAI_SRE_CONFIG"), help="sidecar config naming the SLO file")
    p.add_argument("--out", help="write into this directory instead of stdout")
    p.add_argument("--format", choices=("rules", "prometheusrule", "sloth", "openslo"), default="rules",
                   help="a Prometheus rule file, a prometheus-operator PrometheusRule manifest, "
                   "a Sloth prometheus/v1 spec or OpenSLO v1 documents")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genai_sre.slo.rules import render, write
    from genai_sre.slo.spec import load_slos

    path = slo_file_path(args.slos, args.config)
    slos = load_slos(path)
    source = _source_name(path)
    if args.format in ("sloth", "openslo"):
        from genai_sre.slo import exports

        text = exports.sloth(slos, source) if args.format == "sloth" else exports.openslo(slos, source)
        if not args.out:
            print(text, end="")
            return 0
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        target = out / f"genai-sre-slos.{args.format}.yaml"
        target.write_text(text, encoding="utf-8")
        print(f"wrote {target}")
        return 0
    if args.out:
        written = write(slos, args.out, args.format, source)
        print(f"wrote {written}")
    else:
        print(render(slos, args.format, source), end="")
    return 0
