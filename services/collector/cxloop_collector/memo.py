"""A bounded memory of recently accepted event uids, to answer duplicates cheaply.

Downstream deduplication on `cxschema.feedback_uid` stays authoritative: the memo only spares
Kafka a second copy while this process runs and remembers the uid.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable


class UidMemo(OrderedDict[str, None]):
    """The last `capacity` uids added, oldest forgotten first.

    An `OrderedDict` itself, so that `uid in memo` (once per record on the hot path) costs no
    Python call.
    """

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def add_all(self, uids: Iterable[str]) -> None:
        """Remember each of `uids`, forgetting the oldest ones beyond capacity."""
        if self.capacity <= 0:
            return
        self.update(dict.fromkeys(uids))
        while len(self) > self.capacity:
            self.popitem(last=False)
