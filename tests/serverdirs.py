"""Data folders for embedded servers in tests."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def server_dir(prefix: str) -> Iterator[Path]:
    """A folder for an embedded server's data, outside pytest's temporary root.

    As root, the embedded PostgreSQL runs as the user `pgserver` and opens the folders above its
    data for traversal; pytest makes its temporary root private again whenever a worker starts,
    which would lock a later server out. So server data lives in its own folder under /tmp.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
