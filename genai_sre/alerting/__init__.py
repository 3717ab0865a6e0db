"""Alert routing to on-call: routing tree, grouping, inhibition, silences, receivers, delivery.

```
SLO engine ──Alert──▶ AlertRouter.submit ──▶ groups (route + group_by) ──tick──▶ Notification
                                                                                   │
                         Delivery (timeout, retry on 429/5xx, log, metrics) ◀──────┘
                              │
      alertmanager · pagerduty · slack · webhook · file · stdout · incidents
```
"""

from __future__ import annotations

from genai_sre.alerting.config import AlertingConfig, load_alerting_config
from genai_sre.alerting.delivery import Delivery, DeliveryRecord
from genai_sre.alerting.notification import Notification
from genai_sre.alerting.router import AlertRouter
from genai_sre.alerting.silences import Silence, Silences

__all__ = [
    "AlertRouter",
    "AlertingConfig",
    "Delivery",
    "DeliveryRecord",
    "Notification",
    "Silence",
    "Silences",
    "load_alerting_config",
]
