"""The framer chooses partitions like the Kafka producers' default partitioner."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from cxruntime.framing import murmur2, partition_for


@given(st.binary(max_size=600))
def test_murmur2_is_kafkas(data: bytes) -> None:
    assert murmur2(data) == aiokafka_murmur2(data)


def test_murmur2_known_values() -> None:
    # Kafka's own test vectors (clients/src/test/.../UtilsTest.java, signed 32-bit there).
    cases = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    for data, signed in cases.items():
        assert murmur2(data) == signed & 0xFFFFFFFF


@given(st.binary(min_size=1, max_size=64), st.integers(min_value=1, max_value=64))
def test_partition_of_a_key_is_the_default_partitioners(key: bytes, partitions: int) -> None:
    every = list(range(partitions))
    assert partition_for(key, every) == DefaultPartitioner()(key, every, every)
