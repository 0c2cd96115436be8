"""Slice images: mid-planes of label and grey-level volumes and of scalar fields."""
from __future__ import annotations

import numpy as np

from voxelyte import plotting as vp


def slices_figure(rows: list[dict], *, phase_labels: dict, colors: dict) -> str | None:
    """Orthogonal mid-plane slices, one row per volume. Each row: ``title``, ``planes`` (list of
    (plane name, 2D array, extent (left, right, bottom, top) in µm, axis labels)), ``kind``
    ('gray', 'labels' or 'overlay' with ``under``: gray planes under the labels).

    Parameters
    ----------
    rows : list of dict
        One per volume (rows without planes are skipped).
    phase_labels : dict
        Phase name -> label value (for label images).
    colors : dict
        Phase colours.

    Returns
    -------
    str or None
        The figure as a PNG data URI; None when there is nothing to draw.
    """
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


def field_slices_figure(rows: list[dict]) -> str | None:
    """Mid-plane slices of scalar fields (e.g. current density): each row ``title``, ``unit``,
    ``planes`` as in :func:`slices_figure`; one colour bar per row, viridis.

    Parameters
    ----------
    rows : list of dict
        One per field.

    Returns
    -------
    str or None
        The figure as a PNG data URI; None when there is nothing to draw.
    """
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
