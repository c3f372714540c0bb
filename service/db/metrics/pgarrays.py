"""PostgreSQL arrays built with numpy in PostgreSQL's binary array format, bound as query
parameters without converting one Python number at a time (psycopg's list dumper does that,
and on a 1,000-point batch it cost as much as the insert itself).

Binary array format: ndim, has-nulls flag, element type oid, then per dimension its length
and lower bound, then per element its byte length and its big-endian bytes. Every element
here has a fixed width, so the whole array is one numpy structured buffer. A float array
cannot hold NULL this way: None is sent as NaN and the SQL turns NaN back into NULL (a stored
value is never NaN: non-finite values are stored as NULL).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np
import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

_INT4, _FLOAT8 = 23, 701  # element type oids
_INT4_ARRAY, _FLOAT8_ARRAY = 1007, 1022


class Int4Array(bytes):
    """An ``int4[]`` parameter (the bytes of its binary form)."""


class Float8Array(bytes):
    """A ``float8[]`` parameter; NaN stands for NULL."""


class _Int4ArrayDumper(Dumper):
    format = Format.BINARY
    oid = _INT4_ARRAY

    def dump(self, obj: bytes) -> bytes:
        return obj


class _Float8ArrayDumper(_Int4ArrayDumper):
    oid = _FLOAT8_ARRAY


def register(connection: psycopg.Connection) -> None:
    """Teach one psycopg connection these parameter types (without this, a bytes subclass
    would be sent as ``bytea``)."""
    connection.adapters.register_dumper(Int4Array, _Int4ArrayDumper)
    connection.adapters.register_dumper(Float8Array, _Float8ArrayDumper)


def _pack(values: Sequence[object], oid: int, code: str, width: int) -> bytes:
    n = len(values)
    body = np.empty(n, dtype=np.dtype([("len", ">i4"), ("v", code)]))
    body["len"] = width
    body["v"] = np.asarray(values, dtype=np.float64 if code == ">f8" else np.int64)
    return struct.pack(">iiIii", 1, 0, oid, n, 1) + body.tobytes()


def int4_array(values: Sequence[int]) -> Int4Array:
    return Int4Array(_pack(values, _INT4, ">i4", 4))


def float8_array(values: Sequence[float | None]) -> Float8Array:
    """None (and NaN) become NaN: the SQL reads the element with ``NULLIF(v, 'NaN')``."""
    return Float8Array(_pack(values, _FLOAT8, ">f8", 8))
