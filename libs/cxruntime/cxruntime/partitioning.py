"""Choosing a record's partition as the Kafka producers' default partitioner does.

murmur2 of the key over all of the topic's partitions, a random partition for a record without
a key (the Java client's `Utils.murmur2`, as `aiokafka.partitioner`): a customer's records land
on one partition whichever client produced them.

Hashing a key not seen before costs about 1.3 us in pure Python, 8 % of the collector's
instructions per batched event when most customers are new. `hash_keys` hashes the new keys of a
batch together, with NumPy, grouped by length; single appends still hash one key at a time.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterable, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

_M: Final = 0x5BD1E995
_MASK: Final = 0xFFFFFFFF
_SEED: Final = 0x9747B28C
_WORDS: Final = [struct.Struct(f"<{count}I") for count in range(64)]

CACHE_SIZE: Final = 65_536
"""Key hashes remembered (keys, that is customer ids, repeat); the memory is emptied when full."""
VECTOR_MIN: Final = 16
"""Below this many new keys of one length, hashing them one by one is faster than NumPy."""

_POSITIVE: Final = 0x7FFFFFFF
"""The default partitioner uses the hash's lower 31 bits."""

_hashes: dict[bytes, int] = {}


def murmur2(data: bytes) -> int:
    """Kafka's murmur2, unsigned 32 bits.

    The same function as aiokafka's, which is pure Python too, in half the time: the 4-byte
    words are read with one `struct` call and each step masks once instead of up to three times.
    A test checks both agree on random inputs.
    """
    length = len(data)
    h = _SEED ^ length
    count = length >> 2
    words = _WORDS[count] if count < len(_WORDS) else struct.Struct(f"<{count}I")
    for word in words.unpack_from(data):
        k = (word * _M) & _MASK
        h = ((h * _M) & _MASK) ^ (((k ^ (k >> 24)) * _M) & _MASK)
    tail = length & 3
    if tail:
        base = length - tail
        if tail == 3:
            h ^= data[base + 2] << 16
        if tail >= 2:
            h ^= data[base + 1] << 8
        h = ((h ^ data[base]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def murmur2_many(keys: Sequence[bytes]) -> list[int]:
    """`murmur2` of each key; keys of one length, when there are `VECTOR_MIN` or more of them,
    in one NumPy pass."""
    lengths = set(map(len, keys))
    if len(lengths) == 1 and len(keys) >= VECTOR_MIN:  # the common case: ids of one format
        return _murmur2_same_length(keys, lengths.pop())
    hashes = [0] * len(keys)
    by_length: dict[int, list[int]] = {}
    for index, key in enumerate(keys):
        by_length.setdefault(len(key), []).append(index)
    for length, indices in by_length.items():
        if len(indices) < VECTOR_MIN:
            for index in indices:
                hashes[index] = murmur2(keys[index])
            continue
        group = [keys[index] for index in indices]
        for index, value in zip(indices, _murmur2_same_length(group, length), strict=True):
            hashes[index] = value
    return hashes


def _murmur2_same_length(keys: Sequence[bytes], length: int) -> list[int]:
    rows = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), length)
    hashed: list[int] = _murmur2_rows(rows).tolist()
    return hashed


def _murmur2_rows(rows: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint32]:
    # `murmur2` on each row at once: uint32 arithmetic wraps as the masks do.
    count, length = rows.shape
    m = np.uint32(_M)
    h = np.full(count, (_SEED ^ length) & _MASK, dtype=np.uint32)
    words = length >> 2
    if words:
        block = np.ascontiguousarray(rows[:, : 4 * words]).view("<u4").astype(np.uint32)
        for column in range(words):
            k = block[:, column] * m
            k ^= k >> np.uint32(24)
            k *= m
            h *= m
            h ^= k
    tail = length & 3
    base = 4 * words
    if tail == 3:
        h ^= rows[:, base + 2].astype(np.uint32) << np.uint32(16)
    if tail >= 2:
        h ^= rows[:, base + 1].astype(np.uint32) << np.uint32(8)
    if tail:
        h ^= rows[:, base].astype(np.uint32)
        h *= m
    h ^= h >> np.uint32(13)
    h *= m
    h ^= h >> np.uint32(15)
    return h


def hash_keys(keys: Iterable[bytes | None]) -> None:
    """Hash the keys not seen yet in one pass, ahead of their records' `partition_for`."""
    new = list({key for key in keys if key is not None and key not in _hashes})
    if len(new) < VECTOR_MIN:
        return  # `partition_for` hashes them one by one
    _make_room(len(new))
    _hashes.update(zip(new, map(_POSITIVE.__and__, murmur2_many(new)), strict=True))


def _make_room(count: int) -> None:
    # Emptied rather than evicted one by one: cheap, and the keys in use come back at once.
    if len(_hashes) + count > CACHE_SIZE:
        _hashes.clear()


def partition_for(key: bytes | None, partitions: list[int]) -> int:
    """The partition of a record among the topic's sorted `partitions`, as the producer's
    default partitioner chooses it: murmur2 of the key, a random one without a key."""
    if key is None:
        return random.choice(partitions)
    value = _hashes.get(key)
    if value is None:
        _make_room(1)
        value = _hashes[key] = murmur2(key) & _POSITIVE
    return partitions[value % len(partitions)]
