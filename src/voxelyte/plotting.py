"""Shared figure style: one colour per phase everywhere, one line/hatch style per sample.

Phase colours come from the Okabe–Ito palette (Okabe & Ito 2008, "Color Universal Design"),
distinguishable with the common colour-vision deficiencies: CAM blue, SE orange, pore reddish
purple, carbon-binder green; phases without a fixed colour take the remaining palette entries in
the order of the sample's phase table. Samples overlaid in one figure keep their phase colours and
differ by line style, marker and bar hatch (:func:`sample_styles`). Figures go into reports as
PNG data URIs (:func:`figure_data_uri`), rendered at a modest resolution.
"""
from __future__ import annotations

import base64
import contextlib
import io
from typing import Iterable

import matplotlib

matplotlib.use("Agg")  # never needs a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import ListedColormap, to_rgb  # noqa: E402

#: Okabe–Ito palette (colour-blind safe), in the order free phases take it.
OKABE_ITO = {"blue": "#0072B2", "orange": "#E69F00", "reddish purple": "#CC79A7",
             "bluish green": "#009E73", "vermillion": "#D55E00", "sky blue": "#56B4E9",
             "yellow": "#F0E442", "black": "#000000"}
#: Fixed colours of the usual phases (case-insensitive names).
PHASE_COLORS = {"cam": OKABE_ITO["blue"], "se": OKABE_ITO["orange"], "ise": OKABE_ITO["orange"],
                "pore": OKABE_ITO["reddish purple"], "cbd": OKABE_ITO["bluish green"],
                "carbon": OKABE_ITO["bluish green"], "binder": OKABE_ITO["bluish green"],
                "pt": OKABE_ITO["vermillion"]}
#: Line styles, markers and hatches that tell overlaid samples apart (cycled).
SAMPLE_LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))
SAMPLE_MARKERS = ("o", "s", "^", "D", "v", "P")
SAMPLE_HATCHES = ("", "///", "...", "xxx", "\\\\\\", "ooo")
#: Method styles for the tortuosity comparison (Minnmann et al. 2024, Fig. 6b).
METHOD_HATCHES = {"flux": "", "random walk": "///", "experiment": "..."}

STYLE = {
    "figure.dpi": 100, "savefig.dpi": 100, "font.size": 9, "axes.titlesize": 9.5,
    "axes.labelsize": 9, "legend.fontsize": 8, "xtick.labelsize": 8, "ytick.labelsize": 8,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "grid.color": "#dddddd", "grid.linewidth": 0.6, "axes.axisbelow": True,
    "lines.linewidth": 1.4, "legend.frameon": False, "image.interpolation": "nearest",
    "figure.constrained_layout.use": True, "hatch.linewidth": 0.7, "hatch.color": "#333333",
}
#: Width of a full-width figure in inches (≈ 760 px at 100 dpi: fits a laptop screen).
FULL_WIDTH_IN = 7.6


def phase_colors(phases: Iterable[str]) -> dict[str, str]:
    """Colour (hex) of each phase: the fixed colour of a known name, otherwise the next unused
    Okabe–Ito colour in the order given. Deterministic for a given phase list.

    Parameters
    ----------
    phases : iterable of str
        Phase names, in the sample's table order.

    Returns
    -------
    dict
        Phase name -> hex colour.
    """
    names = list(phases)
    out: dict[str, str] = {}
    used = set()
    for name in names:
        color = PHASE_COLORS.get(str(name).lower())
        if color is not None and color not in used:
            out[name] = color
            used.add(color)
    free = [c for c in OKABE_ITO.values() if c not in used]
    for name in names:
        if name not in out:
            out[name] = free.pop(0) if free else "#777777"
    return out


def phase_colormap(phase_labels: dict[str, int], colors: dict[str, str]):
    """A ListedColormap and norm bounds for label images: label value -> its phase colour
    (labels not in the table: light grey).

    Parameters
    ----------
    phase_labels : dict
        Phase name -> label value.
    colors : dict
        Phase name -> colour (:func:`phase_colors`).

    Returns
    -------
    cmap : matplotlib.colors.ListedColormap
    bounds : tuple of float
        (vmin, vmax) for ``imshow`` so that each integer label takes its colour.
    """
    n = max(list(phase_labels.values()) + [0]) + 1
    table = [to_rgb("#dddddd")] * n
    for name, value in phase_labels.items():
        table[int(value)] = to_rgb(colors[name])
    return ListedColormap(table), (-0.5, n - 0.5)


def sample_styles(samples: Iterable[str]) -> dict[str, dict]:
    """Line style, marker and hatch of each sample (in the order given) for overlaid figures.

    Parameters
    ----------
    samples : iterable of str

    Returns
    -------
    dict
        Sample -> ``{"linestyle", "marker", "hatch"}``.
    """
    out = {}
    for i, name in enumerate(samples):
        out[name] = {"linestyle": SAMPLE_LINESTYLES[i % len(SAMPLE_LINESTYLES)],
                     "marker": SAMPLE_MARKERS[i % len(SAMPLE_MARKERS)],
                     "hatch": SAMPLE_HATCHES[i % len(SAMPLE_HATCHES)]}
    return out


@contextlib.contextmanager
def style():
    """The report style (rcParams) for figures made inside the block.

    Yields
    ------
    None
    """
    with plt.rc_context(STYLE):
        yield


def figure(width_in: float = FULL_WIDTH_IN, height_in: float = 3.0, **kw):
    """A new styled figure ``(fig, axes)`` (call inside :func:`style`).

    Parameters
    ----------
    width_in, height_in : float
        Size in inches.
    **kw
        Passed to :func:`matplotlib.pyplot.subplots`.

    Returns
    -------
    tuple
        ``(fig, axes)``.
    """
    return plt.subplots(figsize=(width_in, height_in), **kw)


def figure_png(fig, *, dpi: int | None = None) -> bytes:
    """PNG bytes of a figure (closed afterwards).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    dpi : int, optional
        Default: the report style's.

    Returns
    -------
    bytes
    """
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi or STYLE["savefig.dpi"],
                    metadata={"Software": None})
    finally:
        plt.close(fig)
    return buf.getvalue()


def png_data_uri(png: bytes) -> str:
    """PNG bytes as a data URI.

    Parameters
    ----------
    png : bytes

    Returns
    -------
    str
        ``data:image/png;base64,...``.
    """
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure_jpeg(fig, *, dpi: int | None = None, quality: int = 85) -> bytes:
    """JPEG bytes of a figure (closed afterwards): for noisy grey-level images, where PNG is
    several times larger.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    dpi : int, optional
    quality : int
        JPEG quality (1–95).

    Returns
    -------
    bytes
    """
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="jpeg", dpi=dpi or STYLE["savefig.dpi"],
                    pil_kwargs={"quality": quality, "optimize": True})
    finally:
        plt.close(fig)
    return buf.getvalue()


def image_data_uri(data: bytes, mime: str) -> str:
    """Image bytes as a data URI.

    Parameters
    ----------
    data : bytes
        The encoded image.
    mime : str
        Its MIME type.

    Returns
    -------
    str
    """
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def figure_data_uri(fig, *, dpi: int | None = None, photo: bool = False) -> str:
    """The figure as a self-contained data URI (closes the figure): PNG, or JPEG (quality 85)
    with ``photo`` for figures made of noisy images.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    dpi : int, optional
    photo : bool
        JPEG instead of PNG.

    Returns
    -------
    str
    """
    if photo:
        return image_data_uri(figure_jpeg(fig, dpi=dpi), "image/jpeg")
    return png_data_uri(figure_png(fig, dpi=dpi))


def compact_image_uri(path, *, max_png_bytes: int = 200_000, quality: int = 85) -> str:
    """An image file as a data URI: PNG files larger than ``max_png_bytes`` re-encoded as JPEG
    (the file itself is left as it is).

    Parameters
    ----------
    path : str or Path
        A PNG file.
    max_png_bytes : int
    quality : int
        JPEG quality of a re-encoded image.

    Returns
    -------
    str
    """
    from pathlib import Path

    data = Path(path).read_bytes()
    if len(data) <= max_png_bytes:
        return png_data_uri(data)
    from PIL import Image

    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buf, format="JPEG", quality=quality,
                                                      optimize=True)
    return image_data_uri(buf.getvalue(), "image/jpeg")
