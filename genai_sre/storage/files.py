"""The data directory is private: mode 0700, and every file the sidecar creates there is 0600.

It holds redacted samples, incident notes and alert payloads: nothing another
user on the machine (or another container sharing a volume) should read.
`private_process()` sets the process umask to 077, which covers every file
created afterwards (SQLite databases with their WAL and SHM files, JSONL logs,
the silences file); `private_dir()` creates the directory 0700, or tightens an
existing one the process owns.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["private_dir", "private_process"]


def private_process() -> None:
    os.umask(0o077)


def private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077:
        path.chmod(0o700)
    return path
