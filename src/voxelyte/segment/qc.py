"""QC figure of the segment stage: orthogonal slices of every channel and of the labels, volume
fractions, confidence histogram."""
from __future__ import annotations

import numpy as np
import xarray as xr

from voxelyte.segment.settings import channel_names, corrected_stack

#: Phase colours in label order (cycled).
PHASE_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]


def phase_colours(phases: dict[str, int]) -> tuple[list[str], np.ndarray]:
    """Phase names in label order and an RGBA lookup table of the label values.

    Parameters
    ----------
    phases : dict
        Phase name -> label value.

    Returns
    -------
    order : list of str
        Names sorted by label.
    lut : numpy.ndarray
        ``(256, 4)``: colour (alpha 0.45) of each phase's label, transparent elsewhere.
    """
    import matplotlib.colors

    order = sorted(phases, key=phases.get)
    lut = np.zeros((256, 4))
    for i, name in enumerate(order):
        lut[phases[name]] = matplotlib.colors.to_rgba(PHASE_COLOURS[i % len(PHASE_COLOURS)],
                                                      0.45)
    return order, lut


def _slice_rows(axes, stack, lab, names, cuts, lut) -> None:
    """One row per channel, then the labels over the first channel: xy, xz, yz cuts."""
    for r, ch in enumerate(names):
        for c, (cut, sel) in enumerate(cuts.items()):
            img = np.asarray(stack.isel(channel=r, **sel).values, dtype=np.float32)
            axes[r, c].imshow(img, cmap="gray", interpolation="nearest", aspect="auto")
            axes[r, c].set_title(f"{ch} {cut}")
    for c, (cut, sel) in enumerate(cuts.items()):
        img = np.asarray(stack.isel(channel=0, **sel).values, dtype=np.float32)
        axes[len(names), c].imshow(img, cmap="gray", interpolation="nearest", aspect="auto")
        axes[len(names), c].imshow(lut[np.asarray(lab.isel(**sel).values)],
                                   interpolation="nearest", aspect="auto")
        axes[len(names), c].set_title(f"labels over {names[0]} {cut}")


def qc_figure(corrected: xr.Dataset, labels: xr.Dataset, info: dict, path) -> None:
    """Write the segment stage's QC figure (PNG).

    Parameters
    ----------
    corrected : xarray.Dataset
        corrected.zarr's dataset.
    labels : xarray.Dataset
        The stage's ``labels`` and ``confidence``.
    info : dict
        The stage's info (``phase_map``, ``volume_fraction``, ``method``).
    path : str or Path

    Returns
    -------
    None
    """
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    stack = corrected_stack(corrected)
    names = channel_names(stack)
    lab = labels["labels"]
    nz, ny, nx = lab.shape
    cuts = {"xy": dict(z=nz // 2), "xz": dict(y=ny // 2), "yz": dict(x=nx // 2)}
    order, lut = phase_colours(info["phase_map"])
    n_rows = len(names) + 1
    fig, axes = plt.subplots(n_rows, 4, figsize=(16, 3.6 * n_rows))
    _slice_rows(axes, stack, lab, names, cuts, lut)
    ax = axes[0, 3]
    vf = info["volume_fraction"]
    ax.bar(order, [vf[n] for n in order], color=[PHASE_COLOURS[i % 6] for i in range(len(order))])
    ax.set_ylabel("volume fraction")
    ax.set_title("volume fractions")
    ax = axes[1, 3]
    ax.hist(np.asarray(labels["confidence"].values).ravel() / 255.0, bins=50, range=(0, 1),
            color="0.4")
    ax.set_xlabel("confidence")
    ax.set_ylabel("voxels")
    ax.set_yscale("log")
    ax.set_title("confidence histogram")
    for r in range(2, n_rows):
        axes[r, 3].axis("off")
    fig.suptitle(f"segmentation ({info['method']})")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
