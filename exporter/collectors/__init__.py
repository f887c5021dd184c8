"""One module per area of the JPD; see :mod:`exporter.collectors.registry`."""
