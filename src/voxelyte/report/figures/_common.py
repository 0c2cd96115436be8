"""Helpers shared by the report figures."""
from __future__ import annotations

import math


#: Line style of each axis in per-axis distributions.
AXIS_LINESTYLES = {"z": "-", "y": "--", "x": ":"}


def _legend(ax, **kw) -> None:
    """A legend only when something is labelled."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kw)


def _sample_legend(fig, styles: dict, extra=()) -> None:
    """Legend of overlaid samples (neutral patches with each sample's hatch) above the axes,
    plus ``extra`` handles (e.g. nominal, ground truth)."""
    from matplotlib.patches import Patch

    handles = list(extra)
    if len(styles) > 1:
        handles += [Patch(facecolor="white", edgecolor="#333333", hatch=st["hatch"], label=name)
                    for name, st in styles.items()]
    if handles:
        fig.legend(handles=handles, loc="outside upper center", ncol=min(len(handles), 6))


def _tables_with_rows(tables: dict) -> dict:
    """The tables of ``{sample: table}`` that are neither None nor empty, in order."""
    return {s: t for s, t in tables.items() if t is not None and not t.empty}


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
