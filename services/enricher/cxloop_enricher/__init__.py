"""cxloop enricher service."""
