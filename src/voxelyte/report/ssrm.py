"""The simulated-SSRM section of a sample page (ssrm.json, ssrm.zarr), with the comparison of
the SSRM's isolated carrier fraction against the connectivity descriptors (descriptors.json)."""
from __future__ import annotations

import logging

import numpy as np

from voxelyte.contract import AXES
from voxelyte.report import figures as fg
from voxelyte.report.collect import SampleResults
from voxelyte.report.html import (cell, dig, figure_block, fmt, key_cell, not_run, phase_cell,
                                  pretty, section, table_block)
from voxelyte.report.volumes import extent, open_store

log = logging.getLogger(__name__)

def _map_attrs(res: SampleResults) -> dict:
    if "ssrm_map" not in res.stores:
        return {}
    try:
        return dict(open_store(res.stores["ssrm_map"]).attrs)
    except Exception as err:
        log.warning("%s: cannot read ssrm.zarr: %s", res.name, err)
        return {}


def _ssrm_map(res: SampleResults):
    """(resistance map 2D, extent, face axes) from ssrm.zarr, or Nones."""
    if "ssrm_map" not in res.stores:
        return None, None, None
    try:
        ds = open_store(res.stores["ssrm_map"])
    except Exception as err:
        log.warning("%s: cannot read ssrm.zarr: %s", res.name, err)
        return None, None, None
    var = "resistance_ohm" if "resistance_ohm" in ds else next(
        (v for v in ds.data_vars if "resistance" in v and ds[v].ndim == 2), None)
    if var is None:
        return None, None, None
    v = ds[var]
    dims = v.dims
    h = v[dims[1]].values if dims[1] in v.coords else np.arange(v.shape[1])
    vv = v[dims[0]].values if dims[0] in v.coords else np.arange(v.shape[0])
    return np.asarray(v.values, float), extent(h, vv), tuple(dims)


def ssrm_histograms(s: dict) -> dict:
    """The log₁₀ R histogram of ssrm.json per phase.

    Parameters
    ----------
    s : dict
        ssrm.json.

    Returns
    -------
    dict
        ``{phase: (bin edges, counts)}``.
    """
    h = s.get("log10_resistance_histogram") or {}
    edges = h.get("bin_edges_log10_ohm")
    return {p: (edges, c) for p, c in (h.get("counts") or {}).items()
            if edges is not None and c is not None}


def ssrm_profiles(s: dict, res: SampleResults) -> list:
    """Depth profiles of the current density below chosen tips and for the full-face (DC) mode.

    Parameters
    ----------
    s : dict
        ssrm.json.
    res : SampleResults

    Returns
    -------
    list of tuple
        (depth in µm along the scanned axis, current density A cm⁻², label).
    """
    axis = dig(s, "dc", "axis") or "z"
    vox = (res.descriptors or {}).get(f"voxel_size_{axis}_um")
    if vox is None:
        vs = _map_attrs(res).get("voxel_size_um")
        vox = vs[AXES.index(axis)] if vs else None
    vox = vox or 1.0
    out = []
    for f in s.get("current_fields") or []:
        prof = f.get("depth_profile_A_cm2")
        if prof:
            out.append(((np.arange(len(prof)) + 0.5) * vox, prof,
                        f"tip, R = {fmt(f.get('resistance_ohm'))} Ω"))
    dc = s.get("dc") or {}
    if dc.get("depth_profile_A_cm2"):
        prof = dc["depth_profile_A_cm2"]
        out.append(((np.arange(len(prof)) + 0.5) * vox, prof, "full face (DC)"))
    return out


def descriptor_connectivity(res: SampleResults) -> dict:
    """The connectivity descriptors of the SSRM's carrier phase along the scanned axis.

    Parameters
    ----------
    res : SampleResults
        With ssrm.json (carrier phase), ssrm.zarr (scanned axis and side) and descriptors.json.

    Returns
    -------
    dict
        descriptors.json key -> value for ``connectivity_<carrier>_<measure>`` with the
        measures isolated_from_current_collector, isolated_<axis>, dead_end_<axis>,
        percolating_<axis> and surface_unconnected_<axis>_<side>; empty when a document is
        missing.
    """
    carrier = dig(res.json, "ssrm", "connectivity", "carrier_phase")
    d = res.descriptors
    if carrier is None or d is None:
        return {}
    attrs = _map_attrs(res)
    axis = attrs.get("scanned_axis") or dig(res.json, "ssrm", "dc", "axis") or "z"
    side = attrs.get("scanned_side") or "start"
    keys = [f"connectivity_{carrier}_{m}" for m in (
        "isolated_from_current_collector", f"isolated_{axis}", f"dead_end_{axis}",
        f"percolating_{axis}", f"surface_unconnected_{axis}_{side}")]
    return {k: d[k] for k in keys if k in d}


def _connectivity_rows(res: SampleResults) -> list:
    s = res.json["ssrm"]
    src = res.source("ssrm")
    conn = s.get("connectivity") or {}
    rows = [[pretty(k), cell(v, src, ["connectivity", k])] for k, v in conn.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) or v is None]
    rows += [[pretty(k), v] for k, v in conn.items() if isinstance(v, str)]
    dsrc = res.source("descriptors")
    rows += [[f"descriptor: {pretty(k)}", cell(v, dsrc, [k])]
             for k, v in descriptor_connectivity(res).items()]
    return rows


def _other_rows(s: dict, src: str) -> list:
    rows = [[pretty(k), cell(v, src, [k])] for k, v in s.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)]
    for group in ("tip", "dc", "solver"):
        for k, v in (s.get(group) or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                rows.append([f"{group}: {pretty(k)}", cell(v, src, [group, k])])
    for k in ("method", "conductivity", "labels_source"):
        if isinstance(s.get(k), str):
            rows.append([pretty(k), s[k]])
    return rows


def ssrm_section(res: SampleResults, colors: dict) -> dict:
    """The simulated-SSRM section: resistance map, log R histogram, depth profiles, per-phase
    numbers and the isolated carrier fraction next to the connectivity descriptors.

    Parameters
    ----------
    res : SampleResults
    colors : dict
        Phase colours.

    Returns
    -------
    dict
        A section.
    """
    s = res.json.get("ssrm")
    if s is None:
        return section("ssrm", "Simulated SSRM", [], missing=not_run("ssrm"))
    src = res.source("ssrm")
    rmap, ext, face = _ssrm_map(res)
    uri = fg.ssrm_figure(rmap, ext, ssrm_histograms(s), ssrm_profiles(s, res), colors,
                         threshold_ohm=dig(s, "connectivity", "isolation_threshold_ohm"),
                         face_axes=face or ("y", "x"))
    prow = [[phase_cell(p, colors)] + [
        key_cell(v, k, src, ["per_phase", p])
        for k in ("n_pixels", "n_infinite", "median_resistance_ohm", "fraction_above_threshold")]
        for p, v in (s.get("per_phase") or {}).items() if isinstance(v, dict)]
    return section("ssrm", "Simulated SSRM", [
        figure_block(uri, "Simulated scanning spreading resistance microscopy (Gamo et al. SI, "
                     "Figs. S2, S3, S6): resistance R = V/I of each tip position on the scanned "
                     "face (1 V against the opposite face), the histogram of log₁₀ R per phase "
                     "under the tip with the isolation threshold (separates well-connected from "
                     "isolated carrier), and the current density per plane below chosen tips and "
                     "for the full-face (DC) window.", "SSRM resistance map, histogram, depth profile"),
        table_block(["phase under the tip", "pixels", "R = ∞", "median R (Ω)",
                     "fraction above threshold"], rows=prow),
        table_block(["isolated carrier vs connectivity", "value"], _connectivity_rows(res),
                    cls="kv", caption="The SSRM's isolated carrier fraction (ssrm.json) next to "
                    "the connectivity descriptors of the carrier phase along the scanned axis "
                    "(descriptors.json)."),
        table_block(["", ""], _other_rows(s, src), cls="kv",
                    caption="Further values of ssrm.json.")])
