"""The figures' look: Debian's Noto Sans CJK SC registered with matplotlib and the rc style
of every figure, the 1/3/5-minute classes with their names and colours, and the palette of
the maps (bands, gains and losses, rivers, town lines, roads, patrols)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from itertools import pairwise
from typing import Any

import numpy as np

from geoservice.errors import ConfigurationError

FONT_FILE = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
FONT_FAMILY = "Noto Sans CJK SC"
MINUTE_COLOURS = ("#1a9850", "#91cf60", "#fee08b", "#d73027")
"""The 1/3/5-minute classes: within 1, 1–3, 3–5, beyond 5 minutes (or never reached)."""
BAND_COLOURS = ("#b30000", "#e34a33", "#fc8d59", "#fdbb84", "#fdd49e", "#fef0d9")
"""Isochrone bands, the shortest darkest."""
GAINED, LOST, KEPT, NEVER = "#2166ac", "#d7191c", "#c7e9c0", "#f0f0f0"
RIVER = "#4f9bd9"
TOWN_LINE = "#2d3748"
ROAD = "#6b6b6b"
PATROL = "#1f4e9c"
KIND_NAMES = {"station": "派出所", "post": "警务室"}
"""The stations' kinds as the legends name them."""


@cache
def font() -> str:
    """Register Debian's Noto Sans CJK with matplotlib (once); the family name.

    Raises
    ------
    ConfigurationError
        When the font file is missing (``fonts-noto-cjk``, installed by ``make tools``).
    """
    from matplotlib import font_manager

    try:
        font_manager.fontManager.addfont(FONT_FILE)
    except OSError:
        msg = f"the CJK font {FONT_FILE} is missing: install fonts-noto-cjk (`make tools`)"
        raise ConfigurationError(msg) from None
    return FONT_FAMILY


def style() -> Any:
    """The rc parameters of every figure (for ``matplotlib.rc_context``)."""
    return {
        "font.family": [font()],
        "font.size": 9,
        "axes.unicode_minus": False,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }


def use_cjk() -> None:
    """Make pyplot's own figures (histograms, charts in a notebook) use the same style."""
    import matplotlib as mpl

    mpl.rcParams.update(style())


def font_properties(size: float) -> Any:
    """The CJK font at ``size`` points, for texts outside the rc style."""
    from matplotlib.font_manager import FontProperties

    return FontProperties(family=font(), size=size)


def minute_classes(minutes: Any, limits: Sequence[float] = (1.0, 3.0, 5.0)) -> np.ndarray:
    """Each value's class: 0 within ``limits[0]``, i within ``limits[i]``, ``len(limits)``
    beyond the last (or never reached: ``inf``/``nan``)."""
    values = np.asarray(minutes, dtype=float)
    out = np.full(len(values), len(limits), dtype=int)
    for i, limit in reversed(list(enumerate(limits))):
        out[values <= limit] = i
    return out


def plain_number(value: float) -> str:
    """``3`` for 3.0, ``2.5`` for 2.5: minutes and kilometres in labels."""
    return f"{value:g}"


def class_names(limits: Sequence[float] = (1.0, 3.0, 5.0)) -> tuple[str, ...]:
    """``("1分钟内", "1—3分钟", "3—5分钟", "超过5分钟")`` for (1, 3, 5)."""
    names = [f"{plain_number(limits[0])}分钟内"]
    names += [f"{plain_number(a)}—{plain_number(b)}分钟" for a, b in pairwise(limits)]
    names.append(f"超过{plain_number(limits[-1])}分钟")
    return tuple(names)


def class_colours(count: int) -> tuple[str, ...]:
    """``count`` class colours, fastest green to slowest red (the bulletins' four for
    1/3/5 minutes)."""
    if count == len(MINUTE_COLOURS):
        return MINUTE_COLOURS
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    ramp = colormaps["RdYlGn_r"]
    return tuple(to_hex(ramp(x)) for x in np.linspace(0.08, 0.92, count))
