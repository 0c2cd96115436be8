"""Microstructure charts (Minnmann et al. 2024, Figs. 4 and 5): volume fractions, chord lengths,
interface areas, sizes and through-thickness profiles."""
from __future__ import annotations

import numpy as np
import pandas as pd

from voxelyte import plotting as vp
from voxelyte.report.figures._common import (AXIS_LINESTYLES, _finite, _legend, _sample_legend,
                                             _tables_with_rows)


def volume_fraction_figure(data: dict[str, dict], colors: dict) -> str | None:
    """Volume fractions per phase (Minnmann et al. 2024, Fig. 4 b–d): a bar per sample and
    phase (measured), a black bar for the nominal (from the prepared masses and densities), a
    white diamond for the phantom's ground truth. ``data: {sample: {phase: {"measured",
    "nominal"?, "truth"?}}}``.

    Parameters
    ----------
    data : dict
        Sample -> phase -> fractions.
    colors : dict
        Phase colours.

    Returns
    -------
    str or None
        The figure as a PNG data URI; None when there is nothing to draw.
    """
    data = {s: v for s, v in data.items() if v}
    if not data:
        return None
    phases = [p for p in colors if any(p in v for v in data.values())]
    styles = vp.sample_styles(data)
    n = len(data)
    width = 0.8 / n
    extra: dict = {}
    with vp.style():
        fig, ax = vp.figure(min(vp.FULL_WIDTH_IN, 2.4 + 1.3 * len(phases) * max(1, n / 2)), 3.1)
        for i, (sample, per_phase) in enumerate(data.items()):
            for j, phase in enumerate(phases):
                v = per_phase.get(phase)
                if not v or not _finite(v.get("measured")):
                    continue
                x = j - 0.4 + width * (i + 0.5)
                ax.bar(x, v["measured"], width * 0.92, color=colors[phase],
                       hatch=styles[sample]["hatch"], edgecolor="#333333", linewidth=0.5)
                if _finite(v.get("nominal")):
                    ax.hlines(v["nominal"], x - width * 0.46, x + width * 0.46, color="black",
                              linewidth=2.2)
                    extra["nominal"] = True
                if _finite(v.get("truth")):
                    ax.plot(x, v["truth"], marker="D", markersize=5, color="white",
                            markeredgecolor="black", linestyle="none")
                    extra["truth"] = True
        ax.set_xticks(range(len(phases)), phases)
        ax.set_ylabel("volume fraction (–)")
        ax.set_ylim(0, None)
        from matplotlib.lines import Line2D

        handles = ([Line2D([], [], color="black", linewidth=2.2, label="nominal")]
                   if extra.get("nominal") else []) + (
            [Line2D([], [], marker="D", color="white", markeredgecolor="black", linestyle="none",
                    label="ground truth")] if extra.get("truth") else [])
        _sample_legend(fig, styles, handles)
        return vp.figure_data_uri(fig)


def _cld_fraction(table: pd.DataFrame) -> pd.DataFrame:
    t = table.groupby("chord_length_um", as_index=False)["count"].sum()
    t["fraction"] = t["count"] / t["count"].sum() if t["count"].sum() > 0 else 0.0
    return t


def chord_length_figure(tables: dict[str, pd.DataFrame], colors: dict) -> str | None:
    """Chord-length distributions per phase (Minnmann et al. 2024, Fig. 5a): fraction of chords
    per length bin, one panel per phase. One sample: a line per axis; several: all axes pooled,
    a line style per sample.

    Parameters
    ----------
    tables : dict
        Sample -> chord_length_distribution table (None or empty skipped).
    colors : dict
        Phase colours.

    Returns
    -------
    str or None
        The figure as a PNG data URI; None when there is nothing to draw.
    """
    tables = _tables_with_rows(tables)
    if not tables:
        return None
    phases = [p for p in colors if any((t["phase"] == p).any() for t in tables.values())]
    styles = vp.sample_styles(tables)
    with vp.style():
        fig, axes = vp.figure(vp.FULL_WIDTH_IN, 2.6, ncols=len(phases), squeeze=False,
                              sharey=False)
        for ax, phase in zip(axes[0], phases):
            for sample, t in tables.items():
                tp = t[t["phase"] == phase]
                if tp.empty:
                    continue
                if len(tables) == 1:
                    for axis, ta in tp.groupby("axis", sort=False):
                        f = _cld_fraction(ta)
                        ax.plot(f["chord_length_um"], f["fraction"], color=colors[phase],
                                linestyle=AXIS_LINESTYLES.get(axis, "-"), label=f"along {axis}")
                else:
                    f = _cld_fraction(tp)
                    ax.plot(f["chord_length_um"], f["fraction"], color=colors[phase],
                            linestyle=styles[sample]["linestyle"], label=sample)
            ax.set_title(phase)
            ax.set_xlabel("chord length (µm)")
            ax.set_xlim(0, None)
            _legend(ax, loc="upper right")
        axes[0][0].set_ylabel("fraction of chords (–)")
        return vp.figure_data_uri(fig)


def interface_figure(data: dict[str, dict], colors: dict, *, reference: str = "CAM") -> str | None:
    """Specific interface areas per mass of the reference phase (Minnmann et al. 2024, Fig. 5c).
    ``data: {sample: {(a, b): m² g⁻¹}}``; bar face in the colour of b, edge in the colour of a.

    Parameters
    ----------
    data : dict
        Sample -> (a, b) -> area per reference mass.
    colors : dict
        Phase colours.
    reference : str
        The phase whose mass the areas are given per.

    Returns
    -------
    str or None
        The figure as a PNG data URI; None when there is nothing to draw.
    """
    data = {s: {k: v for k, v in d.items() if _finite(v)} for s, d in data.items()}
    data = {s: d for s, d in data.items() if d}
    if not data:
        return None
    pairs = list(dict.fromkeys(p for d in data.values() for p in d))
    styles = vp.sample_styles(data)
    n = len(data)
    width = 0.8 / n
    with vp.style():
        fig, ax = vp.figure(min(vp.FULL_WIDTH_IN, 2.4 + 1.4 * len(pairs) * max(1, n / 2)), 2.9)
        for i, (sample, d) in enumerate(data.items()):
            for j, (a, b) in enumerate(pairs):
                if (a, b) not in d:
                    continue
                x = j - 0.4 + width * (i + 0.5)
                ax.bar(x, d[(a, b)], width * 0.85, color=colors.get(b, "#777777"),
                       edgecolor=colors.get(a, "#333333"), linewidth=2.0,
                       hatch=styles[sample]["hatch"])
        ax.set_xticks(range(len(pairs)), [f"{a}–{b}" for a, b in pairs])
        ax.set_ylabel(f"interface area per {reference} mass (m² g⁻¹)")
        _sample_legend(fig, styles)
        return vp.figure_data_uri(fig)


def size_figure(local_thickness: dict[str, pd.DataFrame], particles: dict[str, pd.DataFrame],
                colors: dict, *, particle_phase: str = "CAM") -> str | None:
    """Size distributions: local-thickness distribution per phase (volume fraction of the phase
    per diameter bin) and the volume-weighted histogram of watershed particle equivalent
    diameters. Several samples: a line style per sample.

    Parameters
    ----------
    local_thickness : dict
        Sample -> local_thickness_distribution table.
    particles : dict
        Sample -> particle_sizes table.
    colors : dict
        Phase colours.
    particle_phase : str
        Phase whose particles are drawn.

    Returns
    -------
    str or None
        The figure as a PNG data URI; None when there is nothing to draw.
    """
    lt = _tables_with_rows(local_thickness)
    pa = _tables_with_rows(particles)
    if not lt and not pa:
        return None
    samples = list(dict.fromkeys([*lt, *pa]))
    styles = vp.sample_styles(samples)
    multi = len(samples) > 1
    with vp.style():
        fig, axes = vp.figure(vp.FULL_WIDTH_IN, 2.7, ncols=2 if (lt and pa) else 1, squeeze=False)
        axes = list(axes[0])
        if lt:
            ax = axes.pop(0)
            for sample, t in lt.items():
                for phase, tp in t.groupby("phase", sort=False):
                    ax.plot(tp["diameter_um"], tp["volume_fraction_of_phase"],
                            color=colors.get(phase, "#777777"),
                            linestyle=styles[sample]["linestyle"],
                            label=f"{sample} {phase}" if multi else phase)
            ax.set_xlabel("local thickness (diameter, µm)")
            ax.set_ylabel("volume fraction of phase (–)")
            ax.set_title("local thickness")
            _legend(ax, loc="upper right", fontsize=7)
        if pa:
            ax = axes.pop(0)
            all_d = np.concatenate([t["equivalent_diameter_um"].to_numpy(float) for t in pa.values()])
            bins = np.linspace(0, max(float(np.nanmax(all_d)), 1e-6) * 1.05, 16)
            for sample, t in pa.items():
                d = t["equivalent_diameter_um"].to_numpy(float)
                w = t["volume_um3"].to_numpy(float)
                if d.size == 0 or w.sum() <= 0:
                    continue
                ax.hist(d, bins=bins, weights=w / w.sum(), histtype="step", linewidth=1.5,
                        color=colors.get(particle_phase, "#777777"),
                        linestyle=styles[sample]["linestyle"],
                        label=sample if multi else f"{particle_phase} particles (watershed)")
            ax.set_xlabel("equivalent diameter (µm)")
            ax.set_ylabel("volume fraction of particles (–)")
            ax.set_title(f"{particle_phase} particle sizes")
            _legend(ax, loc="upper right", fontsize=7)
        return vp.figure_data_uri(fig)


def profile_figure(profiles: dict[str, pd.DataFrame], colors: dict, *,
                   normal_axis: str = "z") -> str | None:
    """Through-thickness profiles: phase volume fraction per slice along the electrode normal
    (position from the current-collector side as stored).

    Parameters
    ----------
    profiles : dict
        Sample -> through_thickness_profile table.
    colors : dict
        Phase colours.
    normal_axis : str
        The electrode normal (axis label).

    Returns
    -------
    str or None
        The figure as a PNG data URI; None when there is nothing to draw.
    """
    profiles = _tables_with_rows(profiles)
    if not profiles:
        return None
    styles = vp.sample_styles(profiles)
    with vp.style():
        fig, ax = vp.figure(vp.FULL_WIDTH_IN, 2.7)
        for sample, t in profiles.items():
            for col in t.columns:
                if not col.startswith("volume_fraction_"):
                    continue
                phase = col[len("volume_fraction_"):]
                ax.plot(t["position_um"], t[col], color=colors.get(phase, "#777777"),
                        linestyle=styles[sample]["linestyle"],
                        label=f"{sample} {phase}" if len(profiles) > 1 else phase)
        ax.set_xlabel(f"position along the electrode normal {normal_axis} (µm)")
        ax.set_ylabel("volume fraction (–)")
        ax.set_ylim(0, 1)
        _legend(ax, loc="upper right", ncol=3 if len(profiles) > 1 else 1, fontsize=7)
        return vp.figure_data_uri(fig)
