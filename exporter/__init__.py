"""Prometheus exporter for the JFrog Platform."""

__version__ = "0.1.0"
