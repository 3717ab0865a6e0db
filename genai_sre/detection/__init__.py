"""Detector interface, registry and runner."""
