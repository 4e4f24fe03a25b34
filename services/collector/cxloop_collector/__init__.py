"""cxloop collector service."""
