"""Bias drift and fairness monitoring across user groups, with counterfactual probes.

`BiasDetector` (entry point `bias`) compares outcomes between groups over
sliding windows; `ProbeRunner` (entry point `counterfactual` in
`genai_sre.probes`) sends counterfactual probe prompts on a schedule.
"""

from __future__ import annotations

from detectors.bias.detector import BiasDetector
from detectors.bias.probes import ProbeReport, ProbeRunner

__all__ = ["BiasDetector", "ProbeReport", "ProbeRunner"]
