"""Arrow arrays to and from NumPy, and Arrow scalars, without importing pandas.

pyarrow asks whether a value is a pandas object before it turns a Python or NumPy value
into Arrow (``pa.array``, ``pa.scalar``, a Python value given to a compute function) and
before ``to_numpy``; the first question imports pandas, in every task process that
validates or loads a file, as long as a task's own work on a day's increment
(docs/benchmarks.md). The
hot path (convert, validation, the bronze load) builds what it needs from buffers here
instead. ``tests/unit/test_arrays.py`` checks the values and that a file's whole group
runs without pandas.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def bools(values: np.ndarray) -> pa.BooleanArray:
    """A NumPy boolean array as an Arrow one (no NULLs)."""
    bits = np.packbits(np.asarray(values, dtype=bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])


def int64s(values: np.ndarray) -> pa.Int64Array:
    """A NumPy integer array as an Arrow ``int64`` one (no NULLs)."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def strings(values: Sequence[str]) -> pa.StringArray:
    """Python strings as an Arrow string array (no NULLs)."""
    data = [v.encode() for v in values]
    offsets = np.zeros(len(data) + 1, dtype=np.int32)
    np.cumsum([len(d) for d in data], out=offsets[1:])
    return pa.Array.from_buffers(
        pa.string(), len(data), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))]
    )


def string(value: str) -> pa.StringScalar:
    return strings([value])[0]


def null(arrow_type: pa.DataType) -> pa.Scalar:
    """The NULL of a type."""
    return pa.nulls(1, arrow_type)[0]


FALSE: pa.BooleanScalar = bools(np.zeros(1, dtype=bool))[0]
EMPTY: pa.StringScalar = string("")


def to_bools(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow array's values as NumPy; NULL is False."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count:
        values = pc.fill_null(values, FALSE)
    data = values.buffers()[1]
    if data is None:  # no value at all
        return np.zeros(len(values), dtype=bool)
    bits = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little", count=values.offset + len(values))
    return bits[values.offset :].astype(bool)


def to_int64s(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An integer Arrow array without NULLs as NumPy ``int64``."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.type != pa.int64():
        values = values.cast(pa.int64())
    if values.null_count:
        raise ValueError("NULLs in an array of row numbers or counts")
    data = values.buffers()[1]
    if data is None:
        return np.zeros(len(values), dtype=np.int64)
    return np.frombuffer(data, np.int64, count=len(values), offset=values.offset * 8).copy()
