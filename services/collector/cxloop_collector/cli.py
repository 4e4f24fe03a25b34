"""`cxloop` commands of the collector."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: Any) -> None:
    """Add the collector's sub-commands to the `cxloop` parser."""
    assert isinstance(commands, argparse._SubParsersAction)
