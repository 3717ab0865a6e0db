"""`genai-sre slo status`: a table of every SLO, read from the engine's SQLite snapshot.

It reads `<data_dir>/slo.db` (written by the running sidecar every
`slo.snapshot_interval_s` and on shutdown), so it needs no admin token and
works while the sidecar is down; figures are as fresh as the last snapshot.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from genai_sre.slo.engine import SLOStatus

__all__ = ["format_table", "register"]

_COLUMNS = ("SLO", "objective", "period", "events", "error ratio", "burn 5m", "burn 1h", "burn 6h", "burn 3d",
            "budget left", "alerts")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("slo", help="SLO status")

    def usage(_args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=usage)
    inner = p.add_subparsers(dest="slo_command", metavar="SUBCOMMAND")
    s = inner.add_parser("status", help="error ratios, burn rates, budget left and firing alerts per SLO")
    s.add_argument("--config", default=os.environ.get("GENAI_SRE_CONFIG"), help="sidecar config (data dir, SLO file)")
    s.add_argument("--slos", help="SLO file (default: the config's slo.file, else the bundled slos.yaml)")
    s.add_argument("--data-dir", help="data directory holding slo.db (default: the config's storage.data_dir)")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=run)


def _pct(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x * 100:.{digits}g}%"


def _burn(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def format_table(statuses: list[SLOStatus]) -> str:
    rows = [list(_COLUMNS)]
    for st in statuses:
        burns = st.burn_rates
        period_ratio = st.error_ratios.get(st.period)
        rows.append([
            st.name, f"{st.objective:g}%", st.period, str(st.events_good + st.events_bad), _pct(period_ratio),
            _burn(burns.get("5m")), _burn(burns.get("1h")), _burn(burns.get("6h")), _burn(burns.get("3d")),
            _pct(st.budget_remaining, 4), ",".join(st.firing) or "-",
        ])
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def run(args: argparse.Namespace) -> int:
    from genai_sre.cli.rules import slo_file_path
    from genai_sre.config import load_config
    from genai_sre.slo.engine import SLOEngine
    from genai_sre.slo.spec import load_slos
    from genai_sre.slo.store import DEFAULT_FILENAME, SLOStore

    slos = load_slos(slo_file_path(args.slos, args.config))
    if args.data_dir:
        data_dir = Path(args.data_dir)
    else:
        config = load_config(args.config)
        data_dir = config.resolve(config.storage.data_dir)
    path = data_dir / DEFAULT_FILENAME
    if not path.exists():
        if args.json:
            print(json.dumps({"saved_at": None, "path": str(path), "slos": []}, indent=2))
        else:
            print(
                f"no SLO snapshot at {path} yet: a sidecar running with this data directory writes one every "
                "slo.snapshot_interval_s (pass --data-dir or --config to look elsewhere)"
            )
        return 0
    store = SLOStore(path)
    try:
        engine = SLOEngine(slos, store=store)
        saved_at = engine.restore()
        statuses = engine.status()
    finally:
        store.close()
    from genai_sre.healing.state import format_state, read_state

    failover = read_state(data_dir)  # upstreams with a fallback: failed over or not (genai_sre.healing)
    if args.json:
        print(json.dumps({"saved_at": saved_at, "slos": [_as_dict(s) for s in statuses], "failover": failover},
                         indent=2))
        return 0
    age = "" if saved_at is None else f" (snapshot {max(0.0, time.time() - saved_at):.0f}s old)"
    print(f"SLO status from {path}{age}")
    print(format_table(statuses))
    if failover is not None:
        print("\n".join(format_state(failover)))
    return 0


def _as_dict(st: SLOStatus) -> dict[str, object]:
    return {
        "name": st.name, "objective": st.objective, "period": st.period, "budget_remaining": st.budget_remaining,
        "firing": list(st.firing), "events_good": st.events_good, "events_bad": st.events_bad,
        "windows": {w.window: {"bad": w.bad, "total": w.total, "error_ratio": w.error_ratio, "burn_rate": w.burn_rate}
                    for w in st.windows},
    }
