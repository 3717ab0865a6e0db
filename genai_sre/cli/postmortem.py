"""`genai-sre postmortem INCIDENT_ID [--out FILE]`: write a blameless postmortem draft.

The draft's figures come from where the alerts came from: the SLO engine's last snapshot
(`<data dir>/slo.db`, read with the config's SLO file) and the evidence store
(`<data dir>/evidence.db`), whether the sidecar runs or not.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genai_sre.cli.incidents import add_data_dir_args, data_dir, open_store_of
from genai_sre.incidents.postmortem import EvidenceSource, write_postmortem
from genai_sre.incidents.service import IncidentService

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("postmortem", help="draft a blameless postmortem for an incident (Markdown)")
    p.add_argument("incident_id")
    p.add_argument("--out", help="file to write (default: <data dir>/postmortems/incident-<id>.md)")
    p.add_argument("--slos", help="SLO file (default: the config's slo.file, else the bundled slos.yaml)")
    add_data_dir_args(p)
    p.set_defaults(func=run)


@dataclass
class _Evidence:
    """Samples from the evidence store, SLO figures from the engine restored from its snapshot."""

    store: Any = None
    engine: Any = None

    def samples(self, start: float, end: float, limit: int, *, slo: str | None = None) -> Sequence[Any]:
        return self.store.samples(start, end, limit, slo=slo) if self.store is not None else []

    def slo_figures(self, slo: str, start: float, end: float) -> dict[str, Any] | None:
        return self.engine.figures(slo, start, end) if self.engine is not None else None


@contextlib.contextmanager
def _evidence(args: argparse.Namespace, folder: Path) -> Iterator[EvidenceSource | None]:
    """The evidence store and the SLO snapshot of the data directory, when there are any."""
    from genai_sre.config import load_config
    from genai_sre.slo.store import DEFAULT_FILENAME

    config = load_config(args.config)
    found = _Evidence()
    closers = []
    if (folder / "evidence.db").exists():
        from genai_sre.storage.samples import SampleStore

        found.store = SampleStore(folder, config.storage)
        closers.append(found.store.close)
    if (folder / DEFAULT_FILENAME).exists():
        from genai_sre.cli.rules import slo_file_path
        from genai_sre.slo.engine import SLOEngine
        from genai_sre.slo.spec import load_slos
        from genai_sre.slo.store import SLOStore

        snapshot = SLOStore(folder / DEFAULT_FILENAME)
        closers.append(snapshot.close)
        found.engine = SLOEngine(load_slos(slo_file_path(args.slos, args.config)), store=snapshot)
        found.engine.restore()
    try:
        yield found if closers else None
    finally:
        for close in closers:
            close()


def _page_severities(args: argparse.Namespace) -> tuple[str, ...]:
    from genai_sre.cli.rules import slo_file_path
    from genai_sre.slo.spec import load_slos

    return (load_slos(slo_file_path(args.slos, args.config)).severities.page,)


def run(args: argparse.Namespace) -> int:
    folder = data_dir(args)
    service = IncidentService(open_store_of(args), open_on=_page_severities(args))
    try:
        with _evidence(args, folder) as evidence:
            path = write_postmortem(service, args.incident_id, args.out, evidence)
    except KeyError as exc:
        print(f"genai-sre: {exc.args[0]}")
        return 1
    finally:
        service.store.close()
    print(path)
    return 0
