"""Helpers the built-in detectors share: MiniLM embeddings, the refusal classifier, metrics from the
context, and the one way a detector asks the upstream itself (probes, self-consistency)."""
