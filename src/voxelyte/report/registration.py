"""The registration section: estimated drift per slice (drift.csv), the phantom's true drift and
the drift error that the evaluate stage wrote."""
from __future__ import annotations

import numpy as np

from voxelyte.report import figures as fg
from voxelyte.report.collect import SampleResults
from voxelyte.report.evaluation import DRIFT_ERROR_KEYS
from voxelyte.report.html import (cell, dig, figure_block, fmt, not_run, pretty, section,
                                  table_block)

def _voxel_from_drift(d, comp):
    px, um = d[f"{comp}_px"].to_numpy(float), d[f"{comp}_um"].to_numpy(float)
    ok = np.abs(px) > 1e-9
    return float(np.median(um[ok] / px[ok])) if ok.any() else None


def drift_series(res: SampleResults, truth_ds) -> dict:
    """The drift curves of one sample for :func:`voxelyte.report.figures.drift_figure`.

    Parameters
    ----------
    res : SampleResults
        With its drift table.
    truth_ds : xarray.Dataset or None
        The phantom's ground truth (its per-slice true drift is added when present).

    Returns
    -------
    dict
        ``z_um``, ``dy_um``, ``dx_um``, ``quality`` and, for phantoms, ``true_dy_um`` /
        ``true_dx_um`` (true drift in px times the voxel size).
    """
    d = res.drift
    vox = res.descriptors or {}
    vy = vox.get("voxel_size_y_um") or _voxel_from_drift(d, "dy") or 1.0
    vx = vox.get("voxel_size_x_um") or _voxel_from_drift(d, "dx") or 1.0
    series = {"z_um": d["z_um"], "dy_um": d["dy_um"], "dx_um": d["dx_um"],
              "quality": d.get("quality")}
    if truth_ds is not None and "drift_dy_px" in truth_ds:
        from voxelyte.evaluate import true_drift

        t = true_drift(truth_ds).set_index("z_index").reindex(d["z_index"])
        series["true_dy_um"] = t["dy_px"].to_numpy() * vy
        series["true_dx_um"] = t["dx_px"].to_numpy() * vx
    return series


def registration_section(res: SampleResults, truth_ds) -> dict:
    """The registration section: drift per slice (with the true drift of a phantom), slice
    counts and the drift error against the ground truth (evaluation.json).

    Parameters
    ----------
    res : SampleResults
    truth_ds : xarray.Dataset or None
        The phantom's ground truth.

    Returns
    -------
    dict
        A section.
    """
    if res.drift is None:
        return section("registration", "Registration", [], missing=not_run("register"))
    d = res.drift
    series = drift_series(res, truth_ds)
    valid = d["valid"].astype(str).str.lower().isin(["true", "1"]) if "valid" in d else None
    rows = [["slices", cell(int(len(d)))],
            ["invalid slices", cell(int((~valid).sum())) if valid is not None else "—"],
            ["drift at the last slice dy, dx (µm)",
             f"{fmt(float(d['dy_um'].iloc[-1]))}, {fmt(float(d['dx_um'].iloc[-1]))}"]]
    score = dig(res.json, "evaluation", "registration")
    if score:
        for key in DRIFT_ERROR_KEYS[:4]:           # the slice count: evaluation section
            rows.append([pretty(key).replace(" (", " vs ground truth (", 1),
                         cell(score[key], res.source("evaluation"), ["registration", key])])
    truth = "true_dy_um" in series
    blocks = [figure_block(fg.drift_figure({res.name: series}),
                           "In-plane drift per slice estimated by the registration "
                           "(drift.csv; raw slice z is the ideal slice shifted by +d_z)"
                           + ("; the phantom's true drift in vermillion" if truth else "")
                           + "; right: correlation quality of each slice pair.",
                           "drift per slice"),
              table_block(["", ""], rows, cls="kv")]
    return section("registration", "Registration (drift)", blocks)
