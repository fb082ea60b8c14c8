"""Missing values are ``None`` (SQL NULL, JSON null), never the text ``nan``.

pandas marks a missing value as ``NaN`` (or ``pd.NA``), also in text columns since
pandas 3's string dtype; written as they are, they would reach PostGIS as the text
``'nan'`` or the float ``NaN``. Every writer and reader passes values through here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray


def is_missing(value: Any) -> bool:
    """None, NaN, NaT or ``pd.NA`` (a scalar)."""
    return value is None or (not isinstance(value, str | bytes) and bool(pd.isna(value)))


def none_if_missing(value: Any) -> Any:
    """``value``, or None when it is missing."""
    return None if is_missing(value) else value


def objects(values: Iterable[Any]) -> NDArray[np.object_]:
    """An object array with None for every missing value."""
    return np.array([none_if_missing(v) for v in values], dtype=object)
