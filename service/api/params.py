"""Integer query and path parameters bounded by the columns they reach.

Steps are 32-bit integer columns and offsets go to SQL ``OFFSET`` (a signed 64-bit integer):
a larger number once reached the database and came back as a 500. These types make it a
422 naming the parameter, and the OpenAPI schema shows the bounds.
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge, Le

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

Step = Annotated[int, Ge(0), Le(INT32_MAX)]
Offset = Annotated[int, Ge(0), Le(INT64_MAX)]
