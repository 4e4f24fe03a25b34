"""cxloop metrics service."""
