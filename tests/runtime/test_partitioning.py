"""The framer chooses partitions like the Kafka producers' default partitioner."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from cxruntime.partitioning import VECTOR_MIN, hash_keys, murmur2, murmur2_many, partition_for


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


@given(
    st.lists(
        st.integers(min_value=0, max_value=13).flatmap(
            lambda length: st.lists(st.binary(min_size=length, max_size=length), max_size=40)
        ),
        max_size=4,
    )
)
def test_murmur2_many_is_murmur2(groups: list[list[bytes]]) -> None:
    # Lengths 0-13 cover no word, whole words and every tail; groups of 16 or more take NumPy.
    keys = [key for group in groups for key in group]
    assert murmur2_many(keys) == [murmur2(key) for key in keys]


def test_murmur2_many_on_kafkas_vectors_and_long_keys() -> None:
    keys = [b"21", b"foobar", b"abc", b"a-little-bit-long-string"] * VECTOR_MIN
    keys += [bytes([n]) * 300 for n in range(VECTOR_MIN)]
    assert murmur2_many(keys) == [murmur2(key) for key in keys]


def test_hashed_keys_choose_the_same_partitions() -> None:
    every = list(range(6))
    keys = [f"crm-{n:05d}".encode() for n in range(200)]
    expected = [DefaultPartitioner()(key, every, every) for key in keys]
    hash_keys([*keys, None])
    assert [partition_for(key, every) for key in keys] == expected
