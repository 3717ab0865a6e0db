"""Hallucination risk detector: grounded, calibrated, explained.

Every answer gets a risk in [0, 1] (P(hallucination), 0.5 = even odds) from
cheap lexical-support and contradiction features and a logistic-regression
model stored as JSON (`model.json`), with SHAP contributions and the answer
sentences that lack support. See docs/hallucination.md.

```python
from detectors.hallucination import score_text
risk, why = score_text(context="Paris is the capital of France.", question="Capital of France?",
                       answer="The capital of France is Lyon.")
```
"""

from __future__ import annotations

from detectors.hallucination.detector import HallucinationDetector
from detectors.hallucination.guard import score_text

__all__ = ["HallucinationDetector", "score_text"]
