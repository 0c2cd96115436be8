"""The simulated-SSRM figure (Gamo et al. SI): resistance map, log R histograms, depth profiles."""
from __future__ import annotations

import numpy as np
from matplotlib.colors import LogNorm

from voxelyte import plotting as vp
from voxelyte.report.figures._common import _legend


def ssrm_figure(resistance_map: np.ndarray | None, extent, histograms: dict | None,
                profiles: list | None, colors: dict, *, threshold_ohm: float | None = None,
                face_axes=("y", "x")) -> str | None:
    """Simulated SSRM (Gamo et al. SI, Figs. S2, S3, S6): the resistance map (log colour scale,
    Ω), the log10 R histograms (``{name: (bin edges log10 Ω, counts)}``, one step line per phase
    or sample, ``name`` may be ``(sample, phase)``) with the isolation threshold, and depth
    profiles of the current density under chosen tips (``[(depth_um, A cm⁻², label)]``).

    Parameters
    ----------
    resistance_map : numpy.ndarray or None
        R (Ω) per tip position on the scanned face.
    extent : tuple or None
        Image extent of the map (µm).
    histograms : dict or None
        Name -> (bin edges, counts).
    profiles : list or None
        Depth profiles.
    colors : dict
        Phase colours.
    threshold_ohm : float, optional
        The isolation threshold (a vertical line in the histogram).
    face_axes : tuple of str
        Axis names of the map (rows, columns).

    Returns
    -------
    str or None
        The figure as a PNG data URI; None when there is nothing to draw.
    """
    panels = (resistance_map is not None) + bool(histograms) + bool(profiles)
    if panels == 0:
        return None
    with vp.style():
        fig, axes = vp.figure(vp.FULL_WIDTH_IN, 2.9, ncols=panels, squeeze=False)
        axes = list(axes[0])
        if resistance_map is not None:
            _map_panel(fig, axes.pop(0), resistance_map, extent, face_axes)
        if histograms:
            _histogram_panel(axes.pop(0), histograms, colors, threshold_ohm)
        if profiles:
            _profile_panel(axes.pop(0), profiles)
        return vp.figure_data_uri(fig)


def _map_panel(fig, ax, resistance_map, extent, face_axes) -> None:
    ax.grid(False)
    r = np.asarray(resistance_map, float)
    ok = np.isfinite(r) & (r > 0)
    if ok.any():
        im = ax.imshow(np.where(ok, r, np.nan), cmap="viridis",
                       norm=LogNorm(vmin=r[ok].min(), vmax=r[ok].max()), extent=extent,
                       origin="upper")
        fig.colorbar(im, ax=ax, label="R (Ω)", shrink=0.85)
    ax.set_title("resistance map")
    ax.set_xlabel(f"{face_axes[1]} (µm)")
    ax.set_ylabel(f"{face_axes[0]} (µm)")


def _histogram_panel(ax, histograms, colors, threshold_ohm) -> None:
    samples = list(dict.fromkeys(k[0] for k in histograms if isinstance(k, tuple)))
    styles = vp.sample_styles(samples)
    for name, (edges, counts) in histograms.items():
        sample, phase = name if isinstance(name, tuple) else (None, name)
        counts = np.asarray(counts, float)
        if counts.sum() <= 0:
            continue
        ax.stairs(counts, np.asarray(edges, float), color=colors.get(phase, "#333333"),
                  linewidth=1.4,
                  linestyle=styles[sample]["linestyle"] if sample else "-",
                  label=f"{sample} {phase}" if sample else phase)
    if threshold_ohm and np.isfinite(threshold_ohm) and threshold_ohm > 0:
        ax.axvline(np.log10(threshold_ohm), color="black", linestyle="--", linewidth=1,
                   label="isolation threshold")
    ax.set_xlabel("log₁₀(R / Ω)")
    ax.set_ylabel("tip positions")
    ax.set_title("log-R histogram")
    _legend(ax, loc="best", fontsize=6.5)


def _profile_panel(ax, profiles) -> None:
    positive = True
    for k, (depth, values, label) in enumerate(profiles):
        values = np.asarray(values, float)
        positive &= bool(np.all(values > 0))
        ax.plot(depth, values, color=("#333333", "#0072B2", "#D55E00", "#009E73")[k % 4],
                label=label)
    if positive:
        ax.set_yscale("log")
    ax.set_xlabel("depth below the face (µm)")
    ax.set_ylabel("mean |j| per plane (A cm⁻²)")
    ax.set_title("depth profile (1 V)")
    _legend(ax, loc="best", fontsize=6.5)
