"""Arrow arrays built from buffers (include/etl/ingest/arrays.py) hold the values pyarrow's
own conversions would, sliced arrays and NULLs included."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from include.etl.ingest import arrays
from include.etl.ingest.validation import _key_codes


def test_numpy_to_arrow() -> None:
    flags = np.array([True, False, True, True, False, False, True, False, True, True])
    assert arrays.bools(flags).to_pylist() == flags.tolist()
    assert arrays.bools(flags[3:]).to_pylist() == flags[3:].tolist()
    assert arrays.int64s(np.array([3, -7, 2**40])).to_pylist() == [3, -7, 2**40]
    reversed_int32 = np.array([5, -1, 9], dtype=np.int32)[::-1]  # not contiguous, not int64
    assert arrays.int64s(reversed_int32).to_pylist() == [9, -1, 5]
    assert arrays.strings(["", "é", "ab"]).to_pylist() == ["", "é", "ab"]
    assert arrays.strings([]).to_pylist() == []
    assert arrays.string("x").as_py() == "x" and arrays.EMPTY.as_py() == ""
    assert arrays.FALSE.as_py() is False and arrays.null(pa.timestamp("s")).as_py() is None


def test_arrow_to_numpy() -> None:
    values = pa.array([True, None, False, True, True, None, False, False, True])
    assert arrays.to_bools(values).tolist() == [True, False, False, True, True, False, False, False, True]
    assert arrays.to_bools(values.slice(3, 4)).tolist() == [True, True, False, False]
    assert arrays.to_bools(pa.chunked_array([values[:2], values[2:4]])).tolist() == [True, False, False, True]
    assert arrays.to_bools(pa.nulls(3, pa.bool_())).tolist() == [False, False, False]
    assert arrays.to_int64s(pa.array([4, 5, 6, 7], pa.int32()).slice(1, 2)).tolist() == [5, 6]
    assert arrays.to_int64s(pa.chunked_array([[1], [2, 3]])).tolist() == [1, 2, 3]


def test_key_codes_equal_exactly_when_keys_are() -> None:
    first = pa.chunked_array([["a", "a", None], ["b", "a", None, "a"]])
    second = pa.chunked_array([[1, 2, 1], [1, 1, 1, 2]])
    codes = _key_codes([first, second]).tolist()
    keys = list(zip(first.to_pylist(), second.to_pylist(), strict=True))
    for i in range(len(keys)):
        for j in range(len(keys)):
            assert (codes[i] == codes[j]) == (keys[i] == keys[j]), (keys[i], keys[j])
    single = _key_codes([pa.chunked_array([["x", "y", "x"]])]).tolist()
    assert single[0] == single[2] != single[1]
    assert _key_codes([pa.chunked_array([[]], pa.string())]).tolist() == []


def test_key_codes_stay_below_the_rows() -> None:
    """Numbered from 0 once combined: counting them (``np.bincount``) needs one slot a row,
    not one per pair of values (2M distinct two-column keys asked for 238 GiB)."""
    n = 5000
    numbers = pa.chunked_array([pa.array(range(n), pa.int64())])
    names = pa.chunked_array([pa.array([f"k{i}" for i in range(n)])])
    codes = _key_codes([numbers, names, names])
    assert sorted(codes.tolist()) == list(range(n))
