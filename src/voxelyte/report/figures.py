"""Report figures. Each takes plain data (dicts, DataFrames, 2D arrays) of one or several samples
and returns a PNG data URI, or None when there is nothing to draw. Phase colours come from
:func:`voxelyte.plotting.phase_colors` (one phase, one colour, in every figure); overlaid samples
differ by line style, marker and hatch (:func:`voxelyte.plotting.sample_styles`)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm

from voxelyte import plotting as vp

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


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# --------------------------------------------------------------------------- volumes
def slices_figure(rows: list[dict], *, phase_labels: dict, colors: dict) -> str | None:
    """Orthogonal mid-plane slices, one row per volume. Each row: ``title``, ``planes`` (list of
    (plane name, 2D array, extent (left, right, bottom, top) in µm, axis labels)), ``kind``
    ('gray', 'labels' or 'overlay' with ``under``: gray planes under the labels)."""
    rows = [r for r in rows if r.get("planes")]
    if not rows:
        return None
    cmap, (lo, hi) = vp.phase_colormap(phase_labels, colors)
    ncol = max(len(r["planes"]) for r in rows)
    with vp.style():
        widths = [max(p[2][1] - p[2][0], 1e-9) / max(abs(p[2][3] - p[2][2]), 1e-9)
                  for p in rows[0]["planes"]]
        # a fixed grid (no constrained layout: it costs seconds on image grids)
        height = 2.35 * len(rows) + 0.35
        fig, axes = vp.figure(vp.FULL_WIDTH_IN, height, nrows=len(rows), ncols=ncol,
                              squeeze=False, gridspec_kw={"width_ratios": widths}, layout="none")
        legend = any(r["kind"] != "gray" for r in rows)
        fig.subplots_adjust(left=0.07, right=0.99, top=1 - 0.3 / height,
                            bottom=(0.75 if legend else 0.45) / height, wspace=0.3, hspace=0.5)
        for r, row in enumerate(rows):
            for c, ax in enumerate(axes[r]):
                if c >= len(row["planes"]):
                    ax.set_axis_off()
                    continue
                plane, img, extent, (xlab, ylab) = row["planes"][c]
                ax.grid(False)
                if row["kind"] == "gray":
                    finite = img[np.isfinite(img)] if img.size else img
                    vmin, vmax = (np.percentile(finite, [0.5, 99.5]) if finite.size else (0, 1))
                    ax.imshow(img, cmap="gray", vmin=vmin, vmax=vmax, extent=extent,
                              origin="upper", aspect="equal")
                else:
                    if row["kind"] == "overlay" and row.get("under") is not None:
                        under = row["under"][c]
                        ax.imshow(under, cmap="gray", extent=extent, origin="upper")
                        ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi, extent=extent,
                                  origin="upper", alpha=0.45)
                    else:
                        ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi, extent=extent,
                                  origin="upper")
                ax.set_title(f"{row['title']}: {plane}", fontsize=8)
                ax.set_xlabel(xlab, fontsize=8)
                ax.set_ylabel(ylab, fontsize=8)
        if legend:
            from matplotlib.patches import Patch

            fig.legend(handles=[Patch(color=colors[n], label=n) for n in phase_labels],
                       loc="lower center", ncol=len(phase_labels))
        # grey levels: JPEG (noise makes PNG several times larger); pure label images: PNG
        photo = any(r["kind"] != "labels" for r in rows)
        return vp.figure_data_uri(fig, photo=photo)


# --------------------------------------------------------------------------- registration
def drift_figure(series: dict[str, dict]) -> str | None:
    """Drift per slice: ``{sample: {"z_um", "dy_um", "dx_um", "quality"?, "true_dy_um"?,
    "true_dx_um"?}}``; dy and dx in two panels, quality in a third when given."""
    series = {k: v for k, v in series.items() if v is not None}
    if not series:
        return None
    styles = vp.sample_styles(series)
    has_q = any(v.get("quality") is not None for v in series.values())
    with vp.style():
        fig, axes = vp.figure(vp.FULL_WIDTH_IN, 2.6, ncols=3 if has_q else 2, squeeze=False)
        axes = axes[0]
        for name, v in series.items():
            st = styles[name]
            for ax, comp in zip(axes, ("dy", "dx")):
                lab = f"{name} estimated" if len(series) > 1 else "estimated (registration)"
                ax.plot(v["z_um"], v[f"{comp}_um"], color="#0072B2", linestyle=st["linestyle"],
                        label=lab)
                if v.get(f"true_{comp}_um") is not None:
                    ax.plot(v["z_um"], v[f"true_{comp}_um"], color="#D55E00",
                            linestyle=st["linestyle"], linewidth=1.0,
                            label=f"{name} ground truth" if len(series) > 1 else "ground truth")
            if has_q and v.get("quality") is not None:
                axes[2].plot(v["z_um"], v["quality"], color="#333333", linestyle=st["linestyle"],
                             label=name)
        for ax, comp in zip(axes, ("dy", "dx")):
            ax.set_xlabel("slice position z (µm)")
            ax.set_ylabel(f"drift {comp} (µm)")
        _legend(axes[0], loc="best")
        if has_q:
            axes[2].set_xlabel("slice position z (µm)")
            axes[2].set_ylabel("pair quality (–)")
            axes[2].set_ylim(0, 1.02)
        return vp.figure_data_uri(fig)


# --------------------------------------------------------------------------- descriptors
def volume_fraction_figure(data: dict[str, dict], colors: dict) -> str | None:
    """Volume fractions per phase (Minnmann et al. 2024, Fig. 4 b–d): a bar per sample and
    phase (measured), a black bar for the nominal (from the prepared masses and densities), a
    white diamond for the phantom's ground truth. ``data: {sample: {phase: {"measured",
    "nominal"?, "truth"?}}}``."""
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
    a line style per sample."""
    tables = {s: t for s, t in tables.items() if t is not None and not t.empty}
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
    ``data: {sample: {(a, b): m² g⁻¹}}``; bar face in the colour of b, edge in the colour of a."""
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
    diameters. Several samples: a line style per sample."""
    lt = {s: t for s, t in local_thickness.items() if t is not None and not t.empty}
    pa = {s: t for s, t in particles.items() if t is not None and not t.empty}
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
    (position from the current-collector side as stored)."""
    profiles = {s: t for s, t in profiles.items() if t is not None and not t.empty}
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


# --------------------------------------------------------------------------- transport
def tortuosity_axes_figure(data: dict[str, dict], colors: dict) -> str | None:
    """Single-phase tortuosity factors per direction, flux-based (solid) and random-walk
    (hatched) where present. ``data: {phase: {axis: {"flux": τ, "random walk": τ}}}``; an
    infinite τ (phase does not percolate) is marked with ∞ above the axis."""
    data = {p: d for p, d in data.items() if d}
    if not data:
        return None
    methods = [m for m in ("flux", "random walk")
               if any(m in v for d in data.values() for v in d.values())]
    axes_names = list(dict.fromkeys(a for d in data.values() for a in d))
    with vp.style():
        fig, ax = vp.figure(vp.FULL_WIDTH_IN, 2.9)
        groups = [(p, a) for p in data for a in axes_names if a in data[p]]
        width = 0.8 / len(methods)
        finite = [v for d in data.values() for m in d.values() for v in m.values() if _finite(v)]
        top = max(finite) * 1.15 if finite else 1.0
        for g, (phase, axis) in enumerate(groups):
            for k, method in enumerate(methods):
                v = data[phase][axis].get(method)
                x = g - 0.4 + width * (k + 0.5)
                if _finite(v):
                    ax.bar(x, v, width * 0.9, color=colors.get(phase, "#777777"),
                           hatch=vp.METHOD_HATCHES[method], edgecolor="#333333", linewidth=0.5)
                elif v is not None:
                    ax.text(x, top * 0.02, "∞", ha="center", va="bottom", fontsize=11)
        ax.set_xticks(range(len(groups)), [f"{p}\n{a}" for p, a in groups])
        ax.set_ylabel("tortuosity factor τ (–)")
        from matplotlib.patches import Patch

        fig.legend(handles=[Patch(facecolor="white", edgecolor="#333333",
                                  hatch=vp.METHOD_HATCHES[m], label=m) for m in methods],
                   loc="outside upper center", ncol=len(methods))
        return vp.figure_data_uri(fig)


def kappa_figure(data: dict[str, dict], colors: dict) -> str | None:
    """Tortuosity factors of electronic and ionic transport, simulated vs experimental
    (Minnmann et al. 2024, Fig. 6b). ``data: {sample: {kind: {"phase", "flux", "random walk",
    "experiment"}}}`` (κ values, missing ones left out)."""
    data = {s: {k: v for k, v in d.items() if v} for s, d in data.items()}
    data = {s: d for s, d in data.items() if d}
    if not data:
        return None
    kinds = [k for k in ("electronic", "ionic") if any(k in d for d in data.values())]
    methods = [m for m in ("flux", "random walk", "experiment")
               if any(_finite(d.get(k, {}).get(m)) for d in data.values() for k in kinds)]
    if not methods:
        return None
    samples = list(data)
    with vp.style():
        fig, axes = vp.figure(vp.FULL_WIDTH_IN, 2.9, ncols=len(kinds), squeeze=False)
        width = 0.8 / len(methods)
        for ax, kind in zip(axes[0], kinds):
            for i, sample in enumerate(samples):
                entry = data[sample].get(kind) or {}
                color = colors.get(entry.get("phase"), "#777777")
                for k, method in enumerate(methods):
                    v = entry.get(method)
                    if _finite(v):
                        ax.bar(i - 0.4 + width * (k + 0.5), v, width * 0.9, color=color,
                               hatch=vp.METHOD_HATCHES[method], edgecolor="#333333",
                               linewidth=0.5)
            carrier = next((data[s][kind].get("phase") for s in samples if kind in data[s]), "")
            ax.set_title(f"{kind} (carrier: {carrier})")
            ax.set_xticks(range(len(samples)), samples)
            ax.set_ylabel(f"κ_{'el' if kind == 'electronic' else 'ion'} (–)")
        from matplotlib.patches import Patch

        fig.legend(handles=[Patch(facecolor="white", edgecolor="#333333",
                                  hatch=vp.METHOD_HATCHES[m], label=m) for m in methods],
                   loc="outside upper center", ncol=len(methods))
        return vp.figure_data_uri(fig)


def field_slices_figure(rows: list[dict]) -> str | None:
    """Mid-plane slices of scalar fields (e.g. current density): each row ``title``, ``unit``,
    ``planes`` as in :func:`slices_figure`; one colour bar per row, viridis."""
    rows = [r for r in rows if r.get("planes")]
    if not rows:
        return None
    ncol = max(len(r["planes"]) for r in rows)
    with vp.style():
        widths = [max(p[2][1] - p[2][0], 1e-9) / max(abs(p[2][3] - p[2][2]), 1e-9)
                  for p in rows[0]["planes"]]
        height = 2.35 * len(rows) + 0.35
        widths = widths + [0.06]                                    # colour-bar column
        fig, axes = vp.figure(vp.FULL_WIDTH_IN, height, nrows=len(rows), ncols=ncol + 1,
                              squeeze=False, gridspec_kw={"width_ratios": widths}, layout="none")
        fig.subplots_adjust(left=0.07, right=0.92, top=1 - 0.3 / height, bottom=0.45 / height,
                            wspace=0.3, hspace=0.5)
        for r, row in enumerate(rows):
            vals = np.concatenate([np.asarray(p[1], float).ravel() for p in row["planes"]])
            vals = vals[np.isfinite(vals)]
            vmax = float(np.percentile(np.abs(vals), 99.5)) if vals.size else 1.0
            im = None
            for c, ax in enumerate(axes[r][:-1]):
                if c >= len(row["planes"]):
                    ax.set_axis_off()
                    continue
                plane, img, extent, (xlab, ylab) = row["planes"][c]
                ax.grid(False)
                im = ax.imshow(np.abs(img), cmap="viridis", vmin=0, vmax=vmax or 1.0,
                               extent=extent, origin="upper")
                ax.set_title(f"{row['title']}: {plane}", fontsize=8)
                ax.set_xlabel(xlab, fontsize=8)
                ax.set_ylabel(ylab, fontsize=8)
            if im is not None:
                fig.colorbar(im, cax=axes[r][-1], label=row["unit"])
            else:
                axes[r][-1].set_axis_off()
        return vp.figure_data_uri(fig)


# --------------------------------------------------------------------------- SSRM
def ssrm_figure(resistance_map: np.ndarray | None, extent, histograms: dict | None,
                profiles: list | None, colors: dict, *, threshold_ohm: float | None = None,
                face_axes=("y", "x")) -> str | None:
    """Simulated SSRM (Gamo et al. SI, Figs. S2, S3, S6): the resistance map (log colour scale,
    Ω), the log10 R histograms (``{name: (bin edges log10 Ω, counts)}``, one step line per phase
    or sample, ``name`` may be ``(sample, phase)``) with the isolation threshold, and depth
    profiles of the current density under chosen tips (``[(depth_um, A cm⁻², label)]``)."""
    panels = (resistance_map is not None) + bool(histograms) + bool(profiles)
    if panels == 0:
        return None
    with vp.style():
        fig, axes = vp.figure(vp.FULL_WIDTH_IN, 2.9, ncols=panels, squeeze=False)
        axes = list(axes[0])
        if resistance_map is not None:
            ax = axes.pop(0)
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
        if histograms:
            ax = axes.pop(0)
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
        if profiles:
            ax = axes.pop(0)
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
        return vp.figure_data_uri(fig)


def iou_figure(data: dict[str, dict], colors: dict) -> str | None:
    """Segmentation IoU per phase against the ground truth: ``{sample: {phase: IoU}}``."""
    data = {s: {p: v for p, v in d.items() if _finite(v)} for s, d in data.items()}
    data = {s: d for s, d in data.items() if d}
    if not data:
        return None
    phases = [p for p in colors if any(p in d for d in data.values())]
    styles = vp.sample_styles(data)
    n = len(data)
    width = 0.8 / n
    with vp.style():
        fig, ax = vp.figure(min(vp.FULL_WIDTH_IN, 2.4 + 1.3 * len(phases) * max(1, n / 2)), 2.6)
        for i, (sample, d) in enumerate(data.items()):
            for j, phase in enumerate(phases):
                if phase in d:
                    ax.bar(j - 0.4 + width * (i + 0.5), d[phase], width * 0.9,
                           color=colors[phase], hatch=styles[sample]["hatch"],
                           edgecolor="#333333", linewidth=0.5)
        ax.set_xticks(range(len(phases)), phases)
        ax.set_ylabel("IoU vs ground truth (–)")
        ax.set_ylim(0, 1)
        _sample_legend(fig, styles)
        return vp.figure_data_uri(fig)
