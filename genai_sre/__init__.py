"""genai-sre: a reliability sidecar for LLM traffic.

The names below are the public API that detectors and other plugins may use.
"""

from __future__ import annotations

from genai_sre.detection.base import BaseDetector, Detector, DetectorContext
from genai_sre.errors import ConfigError, DatasetError, DeliveryError, GenAISREError, PluginLoadError, StorageError
from genai_sre.events import (
    Alert,
    Annotation,
    Capture,
    ContextPart,
    Evaluation,
    Exchange,
    Finding,
    Incident,
    Message,
    Span,
    TimelineEvent,
    ToolCall,
    TraceIds,
    Usage,
)
from genai_sre.proxy.probes import PROBE_HEADER, probe_headers

__version__ = "0.1.0"

__all__ = [
    "Alert",
    "Annotation",
    "BaseDetector",
    "Capture",
    "ConfigError",
    "ContextPart",
    "DatasetError",
    "DeliveryError",
    "Detector",
    "DetectorContext",
    "Evaluation",
    "Exchange",
    "Finding",
    "GenAISREError",
    "Incident",
    "Message",
    "PROBE_HEADER",
    "PluginLoadError",
    "Span",
    "StorageError",
    "TimelineEvent",
    "ToolCall",
    "TraceIds",
    "Usage",
    "__version__",
    "probe_headers",
]
