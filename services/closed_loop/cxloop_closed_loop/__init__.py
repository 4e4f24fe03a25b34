"""cxloop closed_loop service."""
