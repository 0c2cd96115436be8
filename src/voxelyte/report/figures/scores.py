"""Registration drift and segmentation scores against the ground truth."""
from __future__ import annotations

from voxelyte import plotting as vp
from voxelyte.report.figures._common import _finite, _legend, _sample_legend


def drift_figure(series: dict[str, dict]) -> str | None:
    """Drift per slice: ``{sample: {"z_um", "dy_um", "dx_um", "quality"?, "true_dy_um"?,
    "true_dx_um"?}}``; dy and dx in two panels, quality in a third when given.

    Parameters
    ----------
    series : dict
        Sample -> drift curves (None entries skipped).

    Returns
    -------
    str or None
        The figure as a PNG data URI; None when there is nothing to draw.
    """
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


def iou_figure(data: dict[str, dict], colors: dict) -> str | None:
    """Segmentation IoU per phase against the ground truth: ``{sample: {phase: IoU}}``.

    Parameters
    ----------
    data : dict
        Sample -> phase -> IoU.
    colors : dict
        Phase colours.

    Returns
    -------
    str or None
        The figure as a PNG data URI; None when there is nothing to draw.
    """
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
