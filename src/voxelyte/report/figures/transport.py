"""Transport charts (Minnmann et al. 2024, Fig. 6b): tortuosity factors per direction and κ
simulated vs experiment."""
from __future__ import annotations

from voxelyte import plotting as vp
from voxelyte.report.figures._common import _finite


def tortuosity_axes_figure(data: dict[str, dict], colors: dict) -> str | None:
    """Single-phase tortuosity factors per direction, flux-based (solid) and random-walk
    (hatched) where present. ``data: {phase: {axis: {"flux": τ, "random walk": τ}}}``; an
    infinite τ (phase does not percolate) is marked with ∞ above the axis.

    Parameters
    ----------
    data : dict
        Phase -> axis -> method -> τ.
    colors : dict
        Phase colours.

    Returns
    -------
    str or None
        The figure as a PNG data URI; None when there is nothing to draw.
    """
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
    "experiment"}}}`` (κ values, missing ones left out).

    Parameters
    ----------
    data : dict
        Sample -> kind -> κ per method and the carrier phase.
    colors : dict
        Phase colours.

    Returns
    -------
    str or None
        The figure as a PNG data URI; None when there is nothing to draw.
    """
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
