"""Self-healing: fail-over to a fallback upstream on errors and on SLO pages, recorded where on-call reads it.

The breakers live in the proxy workers (`genai_sre.proxy.failover`); the SLO
side, the annotations and the state file live in the agent (`controller.py`,
`state.py`). See docs/self-healing.md.
"""

from genai_sre.healing.controller import FailoverController, Mitigation, scoped_slos

__all__ = ["FailoverController", "Mitigation", "scoped_slos"]
