"""`genai-sre postmortem INCIDENT_ID [--out FILE]`: write a blameless postmortem draft."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from genai_sre.cli.incidents import add_data_dir_args, data_dir, open_service
from genai_sre.incidents.postmortem import EvidenceSource, write_postmortem

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("postmortem", help="draft a blameless postmortem for an incident (Markdown)")
    p.add_argument("incident_id")
    p.add_argument("--out", help="file to write (default: <data dir>/postmortems/incident-<id>.md)")
    add_data_dir_args(p)
    p.set_defaults(func=run)


@contextlib.contextmanager
def _evidence(args: argparse.Namespace) -> Iterator[EvidenceSource | None]:
    """The evidence store of the data directory, when there is one."""
    path = data_dir(args) / "evidence.db"
    if not path.exists():
        yield None
        return
    from genai_sre.config import StorageConfig, load_config
    from genai_sre.storage.samples import SampleStore

    storage = load_config(args.config).storage if args.config else StorageConfig()
    store = SampleStore(path.parent, storage)
    try:
        yield store
    finally:
        store.close()


def run(args: argparse.Namespace) -> int:
    service = open_service(args)
    try:
        with _evidence(args) as evidence:
            path = write_postmortem(service, args.incident_id, args.out, evidence)
    except KeyError as exc:
        print(f"genai-sre: {exc.args[0]}")
        return 1
    finally:
        service.store.close()
    print(path)
    return 0
