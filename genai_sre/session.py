"""One run of the sidecar: an id the supervisor creates and its children share through the environment.

A replaced agent restores the state its predecessor saved only when it belongs
to the same session; a new run of `genai-sre serve` starts from zero.
"""

from __future__ import annotations

import os
import secrets

__all__ = ["SESSION_ENV", "session_id"]

SESSION_ENV = "GENAI_SRE_SESSION"


def session_id() -> str:
    session = os.environ.get(SESSION_ENV)
    if not session:
        session = os.environ[SESSION_ENV] = secrets.token_hex(8)
    return session
