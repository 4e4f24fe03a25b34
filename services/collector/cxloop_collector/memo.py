"""A bounded memory of recently accepted event uids, to answer duplicates cheaply.

Downstream deduplication on `cxschema.feedback_uid` stays authoritative: the memo only spares
Kafka a second copy while this process runs and remembers the uid.
"""

from __future__ import annotations

from collections import OrderedDict


class UidMemo:
    """The last `capacity` uids added, oldest forgotten first."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._uids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, uid: object) -> bool:
        return uid in self._uids

    def __len__(self) -> int:
        return len(self._uids)

    def add(self, uid: str) -> None:
        """Remember `uid`, forgetting the oldest one beyond capacity."""
        if self._capacity <= 0:
            return
        self._uids[uid] = None
        if len(self._uids) > self._capacity:
            self._uids.popitem(last=False)
