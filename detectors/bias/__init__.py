"""Bias drift and fairness monitoring across user groups, with counterfactual probes.

`BiasDetector` (entry point `bias`) compares outcomes between groups over
sliding windows; `RefusalDetector` (entry point `refusal`) flags refusals;
`ProbeRunner` sends counterfactual probe prompts on a schedule.
"""

from __future__ import annotations

from detectors.bias.detector import BiasDetector
from detectors.bias.probes import ProbeReport, ProbeRunner
from detectors.bias.refusal import RefusalDetector

__all__ = ["BiasDetector", "ProbeReport", "ProbeRunner", "RefusalDetector"]
