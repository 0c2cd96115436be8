"""Per-sample and study reports: self-contained HTML pages (figures embedded as PNG data URIs, no
network) built from whatever stages have run.

Every section is driven by the presence of its artefact: a stage that did not run gets a section
that says so; numbers are shown as the stages wrote them (each table cell carries its source file
and JSON key in ``data-source`` / ``data-key`` and the raw value in ``data-value``, so a test or a
reader can check it against the artefact). The only numbers made here are the phantom drift
scores (:mod:`voxelyte.report.scores`), written to ``report.json`` beside the page.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import re
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from voxelyte import __version__
from voxelyte import plotting as vp
from voxelyte.report import figures as fg
from voxelyte.report.collect import STAGES, SampleResults, collect_sample
from voxelyte.report.scores import drift_error, true_drift

log = logging.getLogger(__name__)
AXES = ("z", "y", "x")
_TEMPLATES = Path(__file__).with_name("templates")


# --------------------------------------------------------------------------- values and cells
def fmt(value: Any) -> str:
    """Display text of a value: 4 significant digits, ∞ for infinity, 'n/a' for NaN, '—' for
    None; never 'nan'."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}".replace(",", " ") if abs(int(value)) >= 10000 else str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "n/a"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.3e}"
        return f"{v:.4g}"
    return str(value)


def _json_value(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and not math.isfinite(float(value)):
        return json.dumps(str(float(value)))          # 'inf' / 'nan' as strings
    if isinstance(value, np.generic):
        value = value.item()
    return json.dumps(value)


def cell(value: Any, source: str | None = None, key: Iterable | None = None) -> dict:
    """A table cell showing ``value``; with ``source`` (file relative to the study folder) and
    ``key`` (path in that JSON document) it is checkable against the artefact."""
    out = {"text": fmt(value), "num": isinstance(value, (int, float)) and not isinstance(value, bool)}
    if source is not None:
        out["source"] = source
        out["key"] = json.dumps(list(key)) if key is not None else None
        out["value"] = _json_value(value)
    return out


def dig(doc: Any, *keys) -> Any:
    """``doc[k1][k2]...`` or None when any level is missing."""
    for k in keys:
        if isinstance(doc, dict) and k in doc:
            doc = doc[k]
        elif isinstance(doc, list) and isinstance(k, int) and -len(doc) <= k < len(doc):
            doc = doc[k]
        else:
            return None
    return doc


_UNITS = [("_m2_g", "m² g⁻¹"), ("_um-1", "µm⁻¹"), ("_um-2", "µm⁻²"), ("_um2", "µm²"),
          ("_um3", "µm³"), ("_um", "µm"), ("_S_cm", "S cm⁻¹"), ("_ohm", "Ω"), ("_px", "px"),
          ("_s", "s"), ("_MB", "MB")]


def unit_of(name: str) -> str:
    for suffix, unit in _UNITS:
        if name.endswith(suffix):
            return unit
    return "–"


def pretty(name: str) -> str:
    """A key as a label: underscores to spaces, the unit suffix as '(unit)'."""
    for suffix, unit in _UNITS:
        if name.endswith(suffix):
            return f"{name[:-len(suffix)].replace('_', ' ')} ({unit})"
    return name.replace("_", " ")


def _inline(doc) -> str:
    """A small nested mapping on one line: 'a: x, y: 1; b: ...'."""
    if isinstance(doc, dict):
        return "; ".join(f"{pretty(str(k))}: {_inline(v)}" for k, v in doc.items())
    return fmt(doc) if not isinstance(doc, str) else doc


# --------------------------------------------------------------------------- blocks
def figure_block(uri: str | None, caption: str, alt: str) -> dict | None:
    return {"type": "figure", "uri": uri, "caption": caption, "alt": alt} if uri else None


def table_block(header: list[str], rows: list[list], caption: str = "", cls: str = "") -> dict | None:
    rows = [[c if isinstance(c, dict) else
             {"text": fmt(c) if not isinstance(c, str) else c,
              "num": isinstance(c, (int, float, np.number)) and not isinstance(c, bool)}
             for c in r] for r in rows]
    return {"type": "table", "header": header, "rows": rows, "caption": caption,
            "cls": cls} if rows else None


def text_block(text: str) -> dict:
    return {"type": "text", "text": text}


def section(sid: str, title: str, blocks: list, *, missing: str | None = None,
            intro: str = "") -> dict:
    blocks = [b for b in blocks if b]
    if missing is None and not blocks:
        missing = "nothing to show: the stage wrote none of the artefacts this section reads"
    return {"id": sid, "title": title, "ran": missing is None, "missing": missing,
            "intro": intro, "blocks": blocks if missing is None else []}


def not_run(stage: str) -> str:
    title = STAGES.get(stage, (stage,))[0]
    return f"The {stage} stage ({title.lower()}) did not run for this sample: no artefact to show."


# --------------------------------------------------------------------------- volumes
def _extent(coords_h, coords_v):
    h = np.asarray(coords_h, float)
    v = np.asarray(coords_v, float)
    dh = (h[1] - h[0]) if h.size > 1 else 1.0
    dv = (v[1] - v[0]) if v.size > 1 else 1.0
    return (h[0] - dh / 2, h[-1] + dh / 2, v[-1] + dv / 2, v[0] - dv / 2)


def mid_planes(da) -> list[tuple]:
    """Orthogonal mid-planes (xy, xz, yz) of a (z, y, x) DataArray with µm coords."""
    nz, ny, nx = (da.sizes[a] for a in AXES)
    coords = {a: (da[a].values if a in da.coords else np.arange(da.sizes[a])) for a in AXES}
    z0, y0, x0 = nz // 2, ny // 2, nx // 2
    return [
        (f"xy, z = {coords['z'][z0]:.2f} µm", np.asarray(da.isel(z=z0).values),
         _extent(coords["x"], coords["y"]), ("x (µm)", "y (µm)")),
        (f"xz, y = {coords['y'][y0]:.2f} µm", np.asarray(da.isel(y=y0).values),
         _extent(coords["x"], coords["z"]), ("x (µm)", "z (µm)")),
        (f"yz, x = {coords['x'][x0]:.2f} µm", np.asarray(da.isel(x=x0).values),
         _extent(coords["y"], coords["z"]), ("y (µm)", "z (µm)")),
    ]


def _open(path):
    import xarray as xr

    return xr.open_zarr(path, consolidated=False)


def _channel_planes(res: SampleResults, key: str, var: str) -> list[dict]:
    if key not in res.stores:
        return []
    try:
        da = _open(res.stores[key])[var]
    except Exception as err:  # unreadable store: say so, do not fail the report
        log.warning("%s: cannot read %s: %s", res.name, res.stores[key], err)
        return []
    rows = []
    channels = list(da["channel"].values) if "channel" in da.dims else [None]
    for ch in channels:
        sub = da.sel(channel=ch) if ch is not None else da
        rows.append({"title": f"{key} {ch}" if ch is not None else key,
                     "planes": mid_planes(sub), "kind": "gray"})
    return rows


def _labels_var(ds) -> str | None:
    for name in ("labels", "label", "segmentation"):
        if name in ds:
            return name
    ints = [v for v in ds.data_vars if ds[v].dims == AXES and ds[v].dtype.kind in "ui"]
    return ints[0] if ints else None


# --------------------------------------------------------------------------- sample sections
def _source(res: SampleResults, rel: str) -> str:
    return f"{res.name}/{rel}"


def sample_overview(res: SampleResults, study: str) -> dict:
    cfg = res.config
    d = res.descriptors or {}
    rows = [["sample", res.name], ["study", study]]
    if cfg.get("description"):
        rows.append(["description", " ".join(str(cfg["description"]).split())])
    shape = [d.get(f"shape_{a}") for a in AXES]
    if all(s is not None for s in shape):
        rows.append(["volume (z, y, x)", cell(" × ".join(str(s) for s in shape) + " voxels")])
    vox = cfg.get("voxel_size_um") or dig(res.json, "phantom", "voxel_size_um")
    if vox is not None:
        rows.append(["voxel size (µm)", json.dumps(vox) if not isinstance(vox, str) else vox])
    for key in ("electrode_normal_axis", "current_collector_side"):
        if cfg.get(key) is not None:
            rows.append([key.replace("_", " "), str(cfg[key])])
    if cfg.get("nominal_composition"):
        rows.append(["nominal composition", _inline(cfg["nominal_composition"])])
    if cfg.get("measured"):
        rows.append(["measured", _inline(cfg["measured"])])
    if cfg.get("inputs"):
        rows.append(["inputs", "; ".join(f"{i.get('name')}: {i.get('path')} ({i.get('format')})"
                                         for i in cfg["inputs"])])
    if "phantom" in res.json:
        p = res.json["phantom"]
        rows.append(["phantom", "ground-truth phantom generated by the workflow (seed "
                     f"{dig(p, 'params', 'seed')}, SE d50 {dig(p, 'params', 'se_d50_um')} µm, "
                     f"CAM d50 {dig(p, 'params', 'cam_d50_um')} µm)"])
    if d.get("labels_source"):
        rows.append(["descriptors computed on", d["labels_source"]])
    blocks = [table_block(["", ""], rows, cls="kv")]
    phases = res.phases()
    colors = vp.phase_colors(phases)
    prow = []
    for name, spec in phases.items():
        prow.append([{"text": name, "swatch": colors[name]}, spec.get("label"),
                     spec.get("density_g_cm3"), spec.get("sigma_electronic_S_cm"),
                     spec.get("sigma_ionic_S_cm"), spec.get("description", "")])
    blocks.append(table_block(["phase", "label", "density (g cm⁻³)", "σ electronic (S cm⁻¹)",
                               "σ ionic (S cm⁻¹)", "description"], prow,
                              caption="Phase table of the sample file (colours used in every figure)."))
    srows = []
    for stage, (title, _) in STAGES.items():
        rec = res.records.get(stage)
        bench = res.benchmarks.get(stage) or {}
        srows.append([stage, title,
                      {"text": "ran" if res.ran(stage) else "did not run",
                       "cls": "ok" if res.ran(stage) else "missing"},
                      (rec or {}).get("created_utc", "—"), bench.get("s"), bench.get("max_rss")])
    blocks.append(table_block(["rule", "stage", "status", "finished (UTC)", "wall time (s)",
                               "peak RSS (MB)"], srows, caption="Stages of the pipeline for this sample."))
    return section("sample", "Sample", blocks)


def volumes_section(res: SampleResults, colors: dict) -> dict:
    if "raw" not in res.stores and "corrected" not in res.stores:
        return section("volumes", "Image volumes", [], missing=not_run("ingest"))
    rows = _channel_planes(res, "raw", "raw") + _channel_planes(res, "corrected", "corrected")
    uri = fg.slices_figure(rows, phase_labels={}, colors={})
    notes = []
    if "corrected" not in res.stores:
        notes.append(text_block(not_run("preprocess") + " Only the raw volume is shown."))
    return section("volumes", "Image volumes", [
        figure_block(uri, "Orthogonal mid-plane slices of the raw stack and of the corrected "
                     "volume (registered, brightness / shading / curtaining / contrast corrected; "
                     "its invalid border is cropped). Grey levels stretched to the 0.5–99.5 "
                     "percentiles per slice.", "orthogonal slices of raw and corrected volumes"),
        *notes])


def registration_section(res: SampleResults, truth_ds) -> tuple[dict, dict | None]:
    if res.drift is None:
        return section("registration", "Registration", [], missing=not_run("register")), None
    d = res.drift
    vox = (res.descriptors or {})
    vy = vox.get("voxel_size_y_um") or _voxel_from_drift(d, "dy") or 1.0
    vx = vox.get("voxel_size_x_um") or _voxel_from_drift(d, "dx") or 1.0
    truth = true_drift(truth_ds)
    score = drift_error(d, truth, (vy, vx)) if truth is not None else None
    series = {"z_um": d["z_um"], "dy_um": d["dy_um"], "dx_um": d["dx_um"],
              "quality": d.get("quality")}
    if truth is not None:
        t = truth.set_index("z_index").reindex(d["z_index"])
        series["true_dy_um"] = t["dy_px"].to_numpy() * vy
        series["true_dx_um"] = t["dx_px"].to_numpy() * vx
    uri = fg.drift_figure({res.name: series})
    rows = [["slices", cell(int(len(d)))],
            ["invalid slices", cell(int((~d["valid"].astype(str).str.lower().isin(["true", "1"])).sum()))
             if "valid" in d else "—"],
            ["drift at the last slice dy, dx (µm)",
             f"{fmt(float(d['dy_um'].iloc[-1]))}, {fmt(float(d['dx_um'].iloc[-1]))}"]]
    if score:
        for key in ("drift_error_rms_px", "drift_error_max_px", "drift_error_rms_um",
                    "drift_error_max_um"):
            rows.append([pretty(key).replace(" (", " vs ground truth (", 1),
                         cell(score[key], _source(res, "report.json"), ["scores", key])])
    blocks = [figure_block(uri, "In-plane drift per slice estimated by the registration "
                           "(drift.csv; raw slice z is the ideal slice shifted by +d_z)"
                           + ("; the phantom's true drift in vermillion" if truth is not None else "")
                           + "; right: correlation quality of each slice pair.",
                           "drift per slice"),
              table_block(["", ""], rows, cls="kv")]
    return section("registration", "Registration (drift)", blocks), score


def _voxel_from_drift(d, comp):
    px, um = d[f"{comp}_px"].to_numpy(float), d[f"{comp}_um"].to_numpy(float)
    ok = np.abs(px) > 1e-9
    return float(np.median(um[ok] / px[ok])) if ok.any() else None


def segmentation_section(res: SampleResults, truth_ds, colors: dict) -> tuple[dict, dict]:
    phases = res.phases()
    labels = {n: int(s["label"]) for n, s in phases.items()}
    rows_fig = []
    under = None
    if "corrected" in res.stores:
        try:
            corr = _open(res.stores["corrected"])["corrected"]
            ch = corr.sel(channel=corr["channel"].values[0]) if "channel" in corr.dims else corr
            under = [p[1] for p in mid_planes(ch)]
        except Exception as err:
            log.warning("%s: %s", res.name, err)
    seg = res.json.get("segmentation")
    if "labels" in res.stores:
        ds = _open(res.stores["labels"])
        var = _labels_var(ds)
        if var is not None:
            planes = mid_planes(ds[var])
            ok = under is not None and all(u.shape == p[1].shape for u, p in zip(under, planes))
            rows_fig.append({"title": "segmented",
                             "planes": planes, "kind": "overlay" if ok else "labels",
                             "under": under if ok else None})
    if truth_ds is not None and "labels" in truth_ds:
        rows_fig.append({"title": "ground truth", "planes": mid_planes(truth_ds["labels"]),
                         "kind": "labels"})
    blocks = []
    uri = fg.slices_figure(rows_fig, phase_labels=labels, colors=colors) if rows_fig else None
    iou = {}
    if "labels" not in res.stores and seg is None:
        missing = not_run("segment")
        if truth_ds is not None:
            missing += (" The descriptors of this phantom are computed on its ground-truth "
                        "labels, shown below.")
            return (section("segmentation", "Segmentation", [
                figure_block(uri, "Ground-truth labels of the phantom (mid-planes).",
                             "ground-truth labels")], intro=missing), iou)
        return section("segmentation", "Segmentation", [], missing=missing), iou
    blocks.append(figure_block(uri, "Segmented labels over the corrected first channel (45 % "
                               "opacity) and, for phantoms, the ground truth in its own "
                               "(unregistered) frame; orthogonal mid-planes.",
                               "segmentation overlay"))
    if seg is not None:
        src = _source(res, "segment/segmentation.json")
        iou_doc = _find_iou(seg)
        if iou_doc is not None:
            path, values = iou_doc
            iou = {p: v for p, v in values.items() if not isinstance(v, (dict, list))}
            blocks.append(figure_block(fg.iou_figure({res.name: iou}, colors),
                                       "Intersection over union of each phase with the ground "
                                       "truth (segmentation.json).", "IoU per phase"))
            if path[0] not in SCORE_FRAMES:       # else in the score tables
                blocks.append(table_block(["phase", "IoU vs ground truth"],
                                          [[p, cell(v, src, [*path, p])] for p, v in iou.items()]))
        for key, title in SCORE_FRAMES.items():
            sc = seg.get(key)
            if not isinstance(sc, dict):
                continue
            rows = []
            for p in sc.get("phases") or list(sc.get("iou") or {}):
                rows.append([{"text": p, "swatch": colors.get(p)}] + [
                    cell(dig(sc, k, p), src, [key, k, p]) if dig(sc, k, p) is not None else "—"
                    for k in ("iou", "volume_fraction_predicted", "volume_fraction_truth",
                              "volume_fraction_error_pp")])
            blocks.append(table_block(["phase", "IoU", "volume fraction segmented",
                                       "volume fraction truth", "error (pp)"], rows,
                                      caption=f"Scores against the ground truth, {title}."))
            if isinstance(sc.get("confusion_matrix_row_normalised"), list):
                blocks.append(_confusion_table(
                    {"matrix": sc["confusion_matrix_row_normalised"], "phases": sc.get("phases")},
                    src, [key, "confusion_matrix_row_normalised"], matrix_key=False))
        scal = [[pretty(k), cell(v, src, [k])] for k, v in seg.items()
                if isinstance(v, (int, float, str)) and not isinstance(v, bool) and k != "scoring"]
        for group in ("volume_fraction", "timings_s"):
            for k, v in (seg.get(group) or {}).items():
                if isinstance(v, (int, float)):
                    label = (f"volume fraction {k}, segmented" if group == "volume_fraction"
                             else f"time {k.removesuffix('_s').replace('_', ' ')} (s)")
                    scal.append([label, cell(v, src, [group, k])])
        blocks.append(table_block(["", ""], scal, cls="kv",
                                  caption="Summary of segment/segmentation.json."
                                  + (f" {seg['scoring']}" if isinstance(seg.get("scoring"), str) else "")))
    if "segment_qc" in res.files:
        uri = vp.compact_image_uri(res.files["segment_qc"])
        blocks.append(figure_block(uri, f"Segmentation QC figure written by the segment stage "
                                   f"({res.files['segment_qc'].name}).", "segmentation QC"))
    return section("segmentation", "Segmentation", blocks), iou


#: segmentation.json's phantom scores, in the order the report shows them
SCORE_FRAMES = {
    "score_truth_grid": "ground-truth grid (the segmentation's own accuracy: the corrected "
                        "volume moved onto the truth's grid by the registration's sub-pixel "
                        "residual, annotated and segmented there)",
    "score_registered_frame": "registered frame (truth shifted to the nearest voxel: the "
                              "sub-pixel rest of the registration error included)",
    "score_plain_frame": "plain frame (registration error included)",
}


def _find_iou(seg: dict):
    for path in (["score_truth_grid", "iou"], ["score_registered_frame", "iou"], ["iou"], ["IoU"],
                 ["scores", "iou"], ["ground_truth", "iou"], ["iou_per_phase"],
                 ["scores", "iou_per_phase"]):
        v = dig(seg, *path)
        if isinstance(v, dict) and v:
            return path, v
    for k, v in seg.items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                if "iou" in k2.lower() and isinstance(v2, dict):
                    return [k, k2], v2
    return None


def _find_confusion(seg: dict):
    for k, v in seg.items():
        if "confusion" in k.lower():
            return [k], v
        if isinstance(v, dict):
            for k2, v2 in v.items():
                if "confusion" in k2.lower():
                    return [k, k2], v2
    return None


def _confusion_table(mat, src, path, matrix_key=True):
    """A confusion matrix given as {true: {pred: n}} or {"phases": [...], "matrix": [[...]]}."""
    if isinstance(mat, dict) and "matrix" in mat:
        names = mat.get("phases") or mat.get("labels") or list(range(len(mat["matrix"])))
        mpath = [*path, "matrix"] if matrix_key else list(path)
        rows = [[str(names[i]), *[cell(v, src, [*mpath, i, j]) for j, v in enumerate(r)]]
                for i, r in enumerate(mat["matrix"])]
        header = ["true \\ predicted", *[str(n) for n in names]]
    elif isinstance(mat, dict) and all(isinstance(v, dict) for v in mat.values()):
        cols = list(dict.fromkeys(c for v in mat.values() for c in v))
        rows = [[str(t), *[cell(v.get(c), src, [*path, t, c]) for c in cols]] for t, v in mat.items()]
        header = ["true \\ predicted", *cols]
    else:
        return None
    return table_block(header, rows, caption="Confusion matrix against the ground truth, "
                       "fraction of each true phase's voxels (rows: true phase, columns: "
                       "segmented phase).")


def fractions_section(res: SampleResults, colors: dict) -> tuple[dict, dict]:
    d = res.descriptors
    if d is None:
        return section("fractions", "Volume fractions", [], missing=not_run("descriptors")), {}
    src = _source(res, "descriptors/descriptors.json")
    truth = dig(res.json, "phantom", "volume_fraction") or {}
    data, rows = {}, []
    for p in res.phases() or colors:
        m = d.get(f"volume_fraction_{p}")
        if m is None:
            continue
        data[p] = {"measured": m, "nominal": d.get(f"volume_fraction_{p}_nominal"),
                   "truth": truth.get(p)}
        rows.append([{"text": p, "swatch": colors.get(p)},
                     cell(m, src, [f"volume_fraction_{p}"]),
                     cell(d.get(f"volume_fraction_{p}_nominal"), src, [f"volume_fraction_{p}_nominal"])
                     if f"volume_fraction_{p}_nominal" in d else "—",
                     cell(d.get(f"volume_fraction_{p}_minus_nominal"), src,
                          [f"volume_fraction_{p}_minus_nominal"])
                     if f"volume_fraction_{p}_minus_nominal" in d else "—",
                     cell(truth[p], _source(res, "phantom/phantom.json"), ["volume_fraction", p])
                     if p in truth else "—",
                     cell(d.get(f"volume_{p}_um3"), src, [f"volume_{p}_um3"])])
    uri = fg.volume_fraction_figure({res.name: data}, colors)
    return section("fractions", "Volume fractions", [
        figure_block(uri, "Volume fraction of each phase from the labels (bars, as Minnmann et "
                     "al. 2024, Fig. 4 b–d); black bars: nominal, from the prepared mass "
                     "fractions and densities (no pores); diamonds: the phantom's ground truth.",
                     "volume fractions"),
        table_block(["phase", "measured", "nominal", "measured − nominal", "ground truth",
                     "volume (µm³)"], rows)]), data


def chords_section(res: SampleResults, colors: dict) -> dict:
    d = res.descriptors
    t = res.tables.get("chord_length_distribution")
    if d is None:
        return section("chords", "Chord-length distributions", [], missing=not_run("descriptors"))
    src = _source(res, "descriptors/descriptors.json")
    rows = _phase_rows(res, d, src, colors, lambda p: [
        *(f"mean_chord_length_{p}_{a}_um" for a in AXES), f"mean_chord_length_{p}_um",
        f"chord_count_{p}"])
    return section("chords", "Chord-length distributions", [
        figure_block(fg.chord_length_figure({res.name: t}, colors),
                     "Chord-length distributions per phase and axis (Minnmann et al. 2024, "
                     f"Fig. 5a): chords sampled every {d.get('chord_step_voxels', '?')} voxels, "
                     "chords touching the volume boundary discarded.", "chord-length distributions")
        if t is not None else None,
        table_block(["phase", "mean along z (µm)", "mean along y (µm)", "mean along x (µm)",
                     "mean, all axes (µm)", "chords"], rows)])


_PAIR = re.compile(r"^specific_interface_area_(.+)_per_(.+)_mass_m2_g$")


def interface_pairs(d: dict, phases: Iterable[str]) -> dict:
    """{(a, b): per-reference-mass interface area} from descriptors.json keys."""
    names = list(phases)
    out = {}
    for key, v in d.items():
        m = _PAIR.match(key)
        if not m:
            continue
        pair = m.group(1)
        for a in names:
            if pair.startswith(a + "_") and pair[len(a) + 1:] in names:
                out[(a, pair[len(a) + 1:])] = (key, v, m.group(2))
    return out


def interfaces_section(res: SampleResults, colors: dict) -> tuple[dict, dict]:
    d = res.descriptors
    if d is None:
        return section("interfaces", "Interface areas", [], missing=not_run("descriptors")), {}
    src = _source(res, "descriptors/descriptors.json")
    pairs = interface_pairs(d, res.phases())
    ref = next((r for _, _, r in pairs.values()), "CAM")
    rows = []
    for (a, b), (key, v, _) in pairs.items():
        k_area, k_vol = f"interface_area_{a}_{b}_um2", f"specific_interface_area_{a}_{b}_um-1"
        rows.append([f"{a}–{b}", cell(d.get(k_area), src, [k_area]),
                     cell(d.get(k_vol), src, [k_vol]), cell(v, src, [key])])
    cov = [[pretty(k), cell(v, src, [k])] for k, v in d.items()
           if k.startswith("surface_coverage_")]
    surf = [[{"text": p, "swatch": colors.get(p)},
             cell(d.get(f"surface_area_{p}_um2"), src, [f"surface_area_{p}_um2"]),
             cell(d.get(f"specific_surface_area_{p}_per_{p}_mass_m2_g"), src,
                  [f"specific_surface_area_{p}_per_{p}_mass_m2_g"])]
            for p in res.phases() if f"surface_area_{p}_um2" in d]
    data = {pair: v for pair, (_, v, _) in pairs.items()}
    uri = fg.interface_figure({res.name: data}, colors, reference=ref)
    return section("interfaces", "Interface and surface areas", [
        figure_block(uri, f"Specific interface area between phases per {ref} mass (Minnmann et "
                     "al. 2024, Fig. 5c; Eq. 1: S_ab = ½ (S_a + S_b − S_c), marching-cubes "
                     "surfaces). Bar face: colour of the second phase, edge: the first.",
                     "interface areas per mass"),
        table_block(["interface", "area (µm²)", "per volume (µm⁻¹)",
                     f"per {ref} mass (m² g⁻¹)"], rows),
        table_block(["phase", "surface area (µm²)", "per own mass (m² g⁻¹)"], surf),
        table_block(["surface coverage", "fraction"], cov, cls="kv")]), data


def _phase_rows(res: SampleResults, d: dict, src: str, colors: dict, keys_of) -> list:
    """One table row per phase that has any of the keys ``keys_of(phase)`` in ``d``: the phase
    with its colour swatch, then each key's value (from ``src``) or "—"."""
    rows = []
    for p in res.phases():
        keys = keys_of(p)
        if any(k in d for k in keys):
            rows.append([{"text": p, "swatch": colors.get(p)},
                         *[cell(d.get(k), src, [k]) if k in d else "—" for k in keys]])
    return rows


def sizes_section(res: SampleResults, colors: dict) -> dict:
    d = res.descriptors
    if d is None:
        return section("sizes", "Size distributions", [], missing=not_run("descriptors"))
    src = _source(res, "descriptors/descriptors.json")
    rows = _phase_rows(res, d, src, colors, lambda p: [
        f"mean_local_thickness_{p}_um", f"median_local_thickness_{p}_um",
        f"granulometry_mean_radius_{p}_um"])
    part = [[pretty(k), cell(v, src, [k])] for k, v in d.items()
            if k.startswith("particle_")]
    uri = fg.size_figure({res.name: res.tables.get("local_thickness_distribution")},
                         {res.name: res.tables.get("particle_sizes")}, colors)
    return section("sizes", "Size distributions", [
        figure_block(uri, "Local-thickness distribution of each phase (volume fraction of the "
                     "phase per diameter) and volume-weighted equivalent diameters of the "
                     "watershed-separated particles.", "size distributions"),
        table_block(["phase", "mean local thickness (µm)", "median local thickness (µm)",
                     "granulometry mean radius (µm)"], rows),
        table_block(["particles (watershed)", "value"], part, cls="kv")])


def profiles_section(res: SampleResults, colors: dict) -> dict:
    d = res.descriptors
    if d is None:
        return section("profiles", "Through-thickness profiles", [], missing=not_run("descriptors"))
    src = _source(res, "descriptors/descriptors.json")
    rows = _phase_rows(res, d, src, colors, lambda p: [
        f"profile_mean_volume_fraction_{p}", f"profile_rsd_{p}", f"profile_slope_{p}_um-1"])
    conn = []
    for p in res.phases():
        for a in AXES:
            keys = [f"connectivity_{p}_{k}_{a}" for k in ("percolating", "dead_end", "isolated")]
            if any(k in d for k in keys):
                conn.append([{"text": p, "swatch": colors.get(p)}, a,
                             *[cell(d.get(k), src, [k]) for k in keys]])
    iso = [[p, cell(d[f"connectivity_{p}_isolated_from_current_collector"], src,
                    [f"connectivity_{p}_isolated_from_current_collector"])]
           for p in res.phases() if f"connectivity_{p}_isolated_from_current_collector" in d]
    normal = d.get("electrode_normal_axis", "z")
    uri = fg.profile_figure({res.name: res.tables.get("through_thickness_profile")}, colors,
                            normal_axis=normal)
    return section("profiles", "Through-thickness profiles and connectivity", [
        figure_block(uri, f"Volume fraction of each phase per slice along the electrode normal "
                     f"({normal}); current collector at the {d.get('current_collector_side', '?')}.",
                     "through-thickness profiles"),
        table_block(["phase", "mean", "relative std. dev.", "slope (µm⁻¹)"], rows),
        table_block(["phase", "axis", "percolating", "dead end", "isolated"], conn,
                    caption="Fraction of each phase's volume connected to both faces of the "
                    "axis (percolating), to one (dead end) or to none (isolated)."),
        table_block(["phase", "fraction isolated from the current collector"], iso)])


# --------------------------------------------------------------------------- transport
def tortuosity_data(t: dict) -> dict:
    """{phase: {axis: {"flux": τ, "random walk": τ}}} from transport.json (τ None: the phase does
    not connect the two faces, stored as null)."""
    out: dict = {}
    for phase, per_axis in (t.get("tortuosity") or {}).items():
        for axis, r in (per_axis or {}).items():
            if not isinstance(r, dict):
                continue
            entry = out.setdefault(phase, {}).setdefault(axis, {})
            if "tortuosity_factor" in r:
                entry["flux"] = _num(r["tortuosity_factor"])
            if r.get("tortuosity_factor_random_walk") is not None:
                entry["random walk"] = _num(r["tortuosity_factor_random_walk"])
    for phase, per_axis in (t.get("random_walk") or {}).items():
        for axis, r in (per_axis or {}).items() if isinstance(per_axis, dict) else ():
            if axis in AXES and isinstance(r, dict) and r.get("tortuosity_factor") is not None:
                out.setdefault(phase, {}).setdefault(axis, {}).setdefault(
                    "random walk", _num(r["tortuosity_factor"]))
    return out


def _num(v):
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return v


def kappa_data(t: dict, normal: str) -> dict:
    """{kind: {"phase", "flux", "random walk", "experiment"}}: κ of the carrier phase along the
    electrode normal, simulated (multi-phase flux), random walk (single phase) and from the
    measured σ_eff (transport.json ``kappa``)."""
    out = {}
    tau = tortuosity_data(t)
    for kind, k in (t.get("kappa") or {}).items():
        if not isinstance(k, dict):
            continue
        axis = k.get("axis") or normal
        entry = {"phase": k.get("phase"), "flux": _num(k.get("kappa_sim")),
                 "experiment": _num(k.get("kappa_exp"))}
        rw = tau.get(k.get("phase"), {}).get(axis, {}).get("random walk")
        if rw is not None:
            entry["random walk"] = rw
        out[kind] = {m: v for m, v in entry.items() if v is not None}
    return out


def transport_sections(res: SampleResults, colors: dict) -> tuple[list[dict], dict]:
    t = res.json.get("transport")
    if t is None:
        return [section("tortuosity", "Tortuosity and effective conductivity", [],
                        missing=not_run("transport")),
                section("flux", "Flux-density maps", [], missing=not_run("transport"))], {}
    src = _source(res, "transport/transport.json")
    normal = dig(t, "settings", "electrode_normal_axis") or (res.descriptors or {}).get(
        "electrode_normal_axis") or res.config.get("electrode_normal_axis") or "z"
    tdata = tortuosity_data(t)
    kdata = kappa_data(t, normal)
    rows = []
    for phase, per_axis in (t.get("tortuosity") or {}).items():
        for axis, r in (per_axis or {}).items():
            if not isinstance(r, dict):
                continue
            key = ["tortuosity", phase, axis]
            rows.append([{"text": phase, "swatch": colors.get(phase)}, axis] + [
                cell(r.get(k), src, [*key, k]) if k in r else "—"
                for k in ("volume_fraction", "tortuosity_factor", "tortuosity_factor_random_walk",
                          "tortuosity_factor_random_walk_stderr", "macmullin_number",
                          "percolating", "percolating_fraction")])
    crow = []
    for kind, per_axis in (t.get("conductivity") or {}).items():
        if not isinstance(per_axis, dict):
            crow.append([kind, "—", "no conducting phase", "—", "—"])
            continue
        for axis, r in per_axis.items():
            key = ["conductivity", kind, axis]
            crow.append([kind, axis, cell(r.get("sigma_eff_S_cm"), src, [*key, "sigma_eff_S_cm"]),
                         r.get("carrier_phase", "—"),
                         cell(r.get("tortuosity_factor_carrier"), src,
                              [*key, "tortuosity_factor_carrier"])])
    krow = []
    for kind, k in (t.get("kappa") or {}).items():
        if isinstance(k, dict):
            krow.append([kind, k.get("phase", "—"), k.get("axis", "—")] + [
                cell(k.get(f), src, ["kappa", kind, f]) for f in
                ("sigma_eff_sim_S_cm", "kappa_sim", "sigma_eff_measured_S_cm", "kappa_exp",
                 "kappa_exp_over_sim")])
    srow = []
    for name, sc in (t.get("scenarios") or {}).items():
        for kind, per_axis in (sc.get("conductivity") or {}).items():
            r = per_axis.get(normal) if isinstance(per_axis, dict) else None
            if isinstance(r, dict):
                key = ["scenarios", name, "conductivity", kind, normal]
                srow.append([name, sc.get("description", ""), kind,
                             cell(r.get("sigma_eff_S_cm"), src, [*key, "sigma_eff_S_cm"]),
                             cell(r.get("tortuosity_factor_carrier"), src,
                                  [*key, "tortuosity_factor_carrier"])])
    tort = section("tortuosity", "Tortuosity and effective conductivity", [
        figure_block(fg.tortuosity_axes_figure(tdata, colors),
                     "Single-phase tortuosity factor τ = φ·σ_bulk/σ_eff (not squared; Minnmann et "
                     "al. 2024, Eq. 3) of each phase along each direction: flux-based (steady "
                     "conduction, Dirichlet on two opposite faces) and random walk (hatched, "
                     "where computed). ∞: the phase does not connect the two faces.",
                     "tortuosity per direction"),
        figure_block(fg.kappa_figure({res.name: kdata}, colors),
                     f"Tortuosity factors of electronic and ionic transport along the electrode "
                     f"normal ({normal}): simulated on the microstructure with every phase at its "
                     "bulk conductivity (flux), random walk in the carrier phase, and experiment "
                     "(from the measured σ_eff), as Minnmann et al. 2024, Fig. 6b.",
                     "kappa simulated vs experiment"),
        table_block(["phase", "axis", "φ", "τ flux", "τ random walk", "± std. err.",
                     "MacMullin N_M", "percolating", "percolating fraction"], rows,
                    caption="Single-phase tortuosity factors (— : not computed, or the phase "
                    "does not percolate)."),
        table_block(["kind", "axis", "σ_eff (S cm⁻¹)", "carrier", "κ simulated"], crow,
                    caption="Multi-phase effective conductivity (every phase at its bulk σ)."),
        table_block(["kind", "carrier", "axis", "σ_eff simulated (S cm⁻¹)", "κ simulated",
                     "σ_eff measured (S cm⁻¹)", "κ experiment", "κ exp / κ sim"], krow),
        table_block(["scenario", "description", "kind", f"σ_eff along {normal} (S cm⁻¹)",
                     "κ simulated"], srow, caption="What-if scenarios (e.g. pores filled).")])
    rows_f = _flux_rows(res)
    flux = section("flux", "Flux-density maps", [
        figure_block(fg.field_slices_figure(rows_f),
                     "Current-density magnitude |j| for 1 V across the volume along the "
                     f"transport axis ({_flux_axis(res)}), every phase at its bulk conductivity; "
                     "orthogonal mid-planes (Minnmann et al. 2024, Fig. 6a).",
                     "flux density maps")] if rows_f else [],
        missing=None if rows_f else "The transport stage wrote no flux field (transport/flux.zarr).")
    return [tort, flux], {"tortuosity": tdata, "kappa": kdata}


def _flux_rows(res: SampleResults) -> list[dict]:
    if "flux" not in res.stores:
        return []
    try:
        ds = _open(res.stores["flux"])
    except Exception as err:
        log.warning("%s: cannot read the flux field: %s", res.name, err)
        return []
    rows = []
    var = next((v for v in ("current_density_magnitude_A_cm2", "current_density_axial_A_cm2")
                if v in ds), None)
    if var is not None and "case" in ds[var].dims:
        for case in ds["case"].values:
            rows.append({"title": f"{case} |j|", "unit": "|j| (A cm⁻²)",
                         "planes": mid_planes(ds[var].sel(case=case))})
    else:
        for v in ds.data_vars:
            if v.startswith("current_density") and ds[v].dims == AXES:
                rows.append({"title": f"|j| {v.split('_')[2]}", "unit": "|j| (A cm⁻²)",
                             "planes": mid_planes(ds[v])})
    return rows


def _flux_axis(res):
    try:
        attrs = _open(res.stores["flux"]).attrs
        return attrs.get("transport_axis") or attrs.get("field_axis") or "?"
    except Exception:
        return "?"


# --------------------------------------------------------------------------- SSRM
def _ssrm_map(res: SampleResults):
    """(resistance map 2D, extent, face axes) from ssrm.zarr, or Nones."""
    if "ssrm" not in res.stores:
        return None, None, None
    try:
        ds = _open(res.stores["ssrm"])
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
    return np.asarray(v.values, float), _extent(h, vv), tuple(dims)


def ssrm_histograms(s: dict) -> dict:
    """{phase: (bin edges, counts)} of ssrm.json's log10 R histogram."""
    h = s.get("log10_resistance_histogram") or {}
    edges = h.get("bin_edges_log10_ohm")
    return {p: (edges, c) for p, c in (h.get("counts") or {}).items()
            if edges is not None and c is not None}


def ssrm_profiles(s: dict, res: SampleResults) -> list:
    """Depth profiles of the current density: chosen tips (ssrm.json current_fields) and the
    full-face DC mode, depth in µm along the scanned axis."""
    axis = dig(res.json, "ssrm", "dc", "axis") or "z"
    vox = (res.descriptors or {}).get(f"voxel_size_{axis}_um")
    if vox is None and "ssrm" in res.stores:
        try:
            vs = _open(res.stores["ssrm"]).attrs.get("voxel_size_um")
            vox = vs[AXES.index(axis)] if vs else None
        except Exception:
            vox = None
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


def ssrm_section(res: SampleResults, colors: dict) -> dict:
    s = res.json.get("ssrm")
    if s is None:
        return section("ssrm", "Simulated SSRM", [], missing=not_run("ssrm"))
    src = _source(res, "ssrm.json")
    rmap, extent, face = _ssrm_map(res)
    conn = s.get("connectivity") or {}
    uri = fg.ssrm_figure(rmap, extent, ssrm_histograms(s), ssrm_profiles(s, res), colors,
                         threshold_ohm=conn.get("isolation_threshold_ohm"),
                         face_axes=face or ("y", "x"))
    prow = [[{"text": p, "swatch": colors.get(p)}] + [
        cell(v.get(k), src, ["per_phase", p, k]) if k in v else "—"
        for k in ("n_pixels", "n_infinite", "median_resistance_ohm", "fraction_above_threshold")]
        for p, v in (s.get("per_phase") or {}).items() if isinstance(v, dict)]
    crow = [[pretty(k), cell(v, src, ["connectivity", k])] for k, v in conn.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) or v is None]
    crow += [[pretty(k), v] for k, v in conn.items() if isinstance(v, str)]
    other = [[pretty(k), cell(v, src, [k])] for k, v in s.items()
             if isinstance(v, (int, float)) and not isinstance(v, bool)]
    for group in ("tip", "dc", "solver"):
        for k, v in (s.get(group) or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                other.append([f"{group}: {pretty(k)}", cell(v, src, [group, k])])
    for k in ("method", "conductivity", "labels_source"):
        if isinstance(s.get(k), str):
            other.append([pretty(k), s[k]])
    return section("ssrm", "Simulated SSRM", [
        figure_block(uri, "Simulated scanning spreading resistance microscopy (Gamo et al. SI, "
                     "Figs. S2, S3, S6): resistance R = V/I of each tip position on the scanned "
                     "face (1 V against the opposite face), the histogram of log₁₀ R per phase "
                     "under the tip with the isolation threshold (separates well-connected from "
                     "isolated carrier), and the current density per plane below chosen tips and "
                     "for the full-face (DC) window.", "SSRM resistance map, histogram, depth profile"),
        table_block(["phase under the tip", "pixels", "R = ∞", "median R (Ω)",
                     "fraction above threshold"], rows=prow),
        table_block(["isolated carrier vs connectivity", "value"], crow, cls="kv"),
        table_block(["", ""], other, cls="kv", caption="Further values of ssrm.json.")])


# --------------------------------------------------------------------------- provenance
def provenance_section(res: SampleResults, sid: str = "provenance") -> dict:
    if not res.records:
        return section(sid, "Provenance", [], missing="No provenance record found for this sample.")
    rows, details = [], []
    for rule in [r for r in STAGES if r in res.records] + [r for r in res.records if r not in STAGES]:
        rec = res.records[rule]
        b = res.benchmarks.get(rule) or {}
        git = rec.get("git") or {}
        rows.append([rule, rec.get("created_utc", "—"), b.get("s"), b.get("max_rss"),
                     (git.get("commit") or "—")[:10] + (" (modified)" if git.get("dirty") else ""),
                     rec.get("voxelyte_version", "—"),
                     (rec.get("sample_config_sha256") or "—")[:12]])
        inputs = [[i.get("name", ""), i.get("path", ""), {"text": i.get("sha256", ""), "cls": "hash"}]
                  for i in rec.get("inputs", [])]
        details.append({"type": "details", "summary": f"{rule}: inputs, parameters, outputs",
                        "blocks": [b_ for b_ in [
                            table_block(["input", "path", "sha256"], inputs),
                            {"type": "pre", "text": json.dumps(rec.get("params", {}), indent=1,
                                                               ensure_ascii=False)},
                            table_block(["outputs"], [[o] for o in rec.get("outputs", [])])] if b_]})
    anyrec = next(iter(res.records.values()))
    pk = [[k, v] for k, v in (anyrec.get("packages") or {}).items()]
    host = anyrec.get("host") or {}
    return section(sid, "Provenance", [
        table_block(["rule", "finished (UTC)", "wall time (s)", "peak RSS (MB)", "git commit",
                     "voxelyte", "sample config sha256"], rows,
                    caption="One record per rule run (provenance/<rule>.json) with Snakemake's "
                    "benchmark (benchmarks/<rule>/<sample>.tsv)."),
        *details,
        table_block(["package", "version"], pk, cls="kv",
                    caption=f"Versions (host: {host.get('platform', '?')}, "
                    f"{host.get('cpu_count', '?')} CPUs)."),
    ])


# --------------------------------------------------------------------------- key numbers
def key_numbers(res: SampleResults, scores: dict | None) -> list[dict]:
    """The sample's key numbers for the study table, each with its source file and JSON key:
    ``{name, label, unit, value, source, key}``."""
    out = []

    def add(name, label, value, source, key, unit=None):
        if value is None and source is None:
            return
        out.append({"name": name, "label": label, "unit": unit or unit_of(name), "value": value,
                    "source": source, "key": list(key) if key is not None else None})

    d = res.descriptors
    phases = list(res.phases())
    if d is not None:
        src = _source(res, "descriptors/descriptors.json")
        if d.get("labels_source"):
            add("labels_source", "labels", d["labels_source"], src, ["labels_source"], unit="")
        for p in phases:
            for k, lab in ((f"volume_fraction_{p}", f"volume fraction {p}"),
                           (f"volume_fraction_{p}_nominal", f"volume fraction {p}, nominal")):
                if k in d:
                    add(k, lab, d[k], src, [k])
        for p, v in (dig(res.json, "phantom", "volume_fraction") or {}).items():
            add(f"ground_truth_volume_fraction_{p}", f"volume fraction {p}, ground truth", v,
                _source(res, "phantom/phantom.json"), ["volume_fraction", p], unit="–")
        for p in phases:
            k = f"mean_chord_length_{p}_um"
            if k in d:
                add(k, f"mean chord length {p}", d[k], src, [k])
        for (a, b), (k, v, ref) in interface_pairs(d, phases).items():
            add(k, f"interface area {a}–{b} per {ref} mass", v, src, [k])
        for k, v in d.items():
            if k.startswith("surface_coverage_") and "particles" not in k:
                add(k, k.replace("_", " "), v, src, [k], unit="–")
        for p in phases:
            k = f"mean_local_thickness_{p}_um"
            if k in d:
                add(k, f"mean local thickness {p}", d[k], src, [k])
        for k in d:
            if k.startswith("particle_d50_volume_weighted_"):
                add(k, k.replace("_", " ").replace(" um", ""), d[k], src, [k])
            if k.endswith("_isolated_from_current_collector"):
                add(k, k.replace("connectivity_", "").replace("_", " "), d[k], src, [k], unit="–")
    if "phantom" in res.json and d is None:
        for p, v in (res.json["phantom"].get("volume_fraction") or {}).items():
            add(f"ground_truth_volume_fraction_{p}", f"volume fraction {p}, ground truth", v,
                _source(res, "phantom/phantom.json"), ["volume_fraction", p], unit="–")
    if scores:
        for k in ("drift_error_rms_px", "drift_error_max_px"):
            if k in scores:
                add(k, k.replace("_", " ").replace(" px", "") + " vs ground truth", scores[k],
                    _source(res, "report.json"), ["scores", k])
    seg = res.json.get("segmentation")
    if seg is not None:
        found = _find_iou(seg)
        if found:
            path, values = found
            for p, v in values.items():
                if isinstance(v, (int, float)):
                    add(f"iou_{p}", f"segmentation IoU {p}", v,
                        _source(res, "segment/segmentation.json"), [*path, p], unit="–")
    t = res.json.get("transport")
    if t is not None:
        src = _source(res, "transport/transport.json")
        normal = dig(t, "settings", "electrode_normal_axis") or "z"
        for kind, k in (t.get("kappa") or {}).items():
            if isinstance(k, dict):
                for f, lab in (("kappa_sim", "simulated"), ("kappa_exp", "experiment")):
                    if f in k:
                        add(f"kappa_{kind}_{'simulated' if f == 'kappa_sim' else 'experiment'}",
                            f"κ {kind} along {k.get('axis', normal)}, {lab}", k[f], src,
                            ["kappa", kind, f], unit="–")
                if "sigma_eff_sim_S_cm" in k:
                    add(f"sigma_eff_{kind}_simulated_S_cm",
                        f"σ_eff {kind} along {k.get('axis', normal)}, simulated",
                        k["sigma_eff_sim_S_cm"], src, ["kappa", kind, "sigma_eff_sim_S_cm"])
        for phase, per_axis in (t.get("tortuosity") or {}).items():
            for axis, r in (per_axis or {}).items():
                if isinstance(r, dict) and "tortuosity_factor" in r:
                    add(f"tortuosity_factor_{phase}_{axis}", f"τ {phase} along {axis} (flux)",
                        r["tortuosity_factor"], src,
                        ["tortuosity", phase, axis, "tortuosity_factor"], unit="–")
                if isinstance(r, dict) and "tortuosity_factor_random_walk" in r:
                    add(f"tortuosity_factor_{phase}_{axis}_random_walk",
                        f"τ {phase} along {axis} (random walk)",
                        r["tortuosity_factor_random_walk"], src,
                        ["tortuosity", phase, axis, "tortuosity_factor_random_walk"], unit="–")
    s = res.json.get("ssrm")
    if s is not None:
        src = _source(res, "ssrm.json")
        for p, v in (s.get("per_phase") or {}).items():
            if isinstance(v, dict) and "median_resistance_ohm" in v:
                add(f"ssrm_median_resistance_{p}_ohm", f"SSRM median R on {p}",
                    v["median_resistance_ohm"], src, ["per_phase", p, "median_resistance_ohm"])
        conn = s.get("connectivity") or {}
        for k in ("isolated_fraction_ssrm", "isolated_fraction_geometric", "pixel_agreement"):
            if k in conn:
                add(f"ssrm_{k}", f"SSRM {conn.get('carrier_phase', '')} {k.replace('_', ' ')}",
                    conn[k], src, ["connectivity", k], unit="–")
        if isinstance(s.get("dc"), dict) and "sigma_eff_S_cm" in s["dc"]:
            add("ssrm_dc_sigma_eff_S_cm", "SSRM full-face (DC) σ_eff", s["dc"]["sigma_eff_S_cm"],
                src, ["dc", "sigma_eff_S_cm"])
    total = sum(float(b.get("s") or 0) for b in res.benchmarks.values())
    if res.benchmarks:
        add("pipeline_wall_time_s", "pipeline wall time (sum over rules)", total, None, None, unit="s")
    return out


# --------------------------------------------------------------------------- rendering
def _env():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             trim_blocks=True,
                             lstrip_blocks=True)
    return env


def render(template: str, **context) -> str:
    return _env().get_template(template).render(**context)


def _write_text_atomic(text: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def build_sample_report(sample_dir, out_html, *, study: str, sample: str | None = None,
                        config: dict | None = None, benchmarks_dir=None,
                        out_json=None) -> dict:
    """Write the per-sample report (self-contained HTML) and its ``report.json`` (the key
    numbers with their sources, the phantom scores, which stages ran). Returns report.json."""
    t0 = time.perf_counter()
    res = collect_sample(sample_dir, name=sample, config=config, benchmarks_dir=benchmarks_dir)
    phases = res.phases()
    colors = vp.phase_colors(phases)
    truth_ds = _open(res.stores["ground_truth"]) if "ground_truth" in res.stores else None
    sections = [sample_overview(res, study), volumes_section(res, colors)]
    reg, score = registration_section(res, truth_ds)
    sections.append(reg)
    seg, iou = segmentation_section(res, truth_ds, colors)
    sections.append(seg)
    frac, _ = fractions_section(res, colors)
    sections += [frac, chords_section(res, colors)]
    inter, _ = interfaces_section(res, colors)
    sections += [inter, sizes_section(res, colors), profiles_section(res, colors)]
    trans, _ = transport_sections(res, colors)
    sections += trans
    sections.append(ssrm_section(res, colors))
    if truth_ds is not None or "phantom" in res.json:
        sections.append(scores_section(res, score, iou))
    sections.append(provenance_section(res))
    doc = {"sample": res.name, "study": study,
           "stages": {s: res.ran(s) for s in STAGES},
           "scores": score or {},
           "key_numbers": None,
           "created_utc": _now(), "voxelyte_version": __version__}
    doc["key_numbers"] = key_numbers(res, score)
    html_text = render("sample.html.j2", title=f"voxelyte report — {study} / {res.name}",
                       heading=f"Sample {res.name}", subtitle=f"study {study}",
                       sections=sections, created=doc["created_utc"], version=__version__,
                       colors=colors)
    out_html = Path(out_html)
    _write_text_atomic(html_text, out_html)
    out_json = Path(out_json) if out_json else out_html.with_name("report.json")
    _write_text_atomic(json.dumps(_jsonable(doc), indent=1, ensure_ascii=False) + "\n", out_json)
    log.info("%s: report %.1f MB in %.1f s", res.name, out_html.stat().st_size / 1e6,
             time.perf_counter() - t0)
    return doc


def scores_section(res: SampleResults, score: dict | None, iou: dict) -> dict:
    rows = []
    if score:
        for k in ("drift_error_rms_px", "drift_error_max_px", "drift_error_rms_um",
                  "drift_error_max_um", "drift_error_slices"):
            rows.append([pretty(k), cell(score[k], _source(res, "report.json"), ["scores", k])])
    else:
        rows.append(["drift error", "— (registration did not run)"])
    truth = dig(res.json, "phantom", "volume_fraction") or {}
    d = res.descriptors or {}
    for p, v in truth.items():
        m = d.get(f"volume_fraction_{p}")
        rows.append([f"volume fraction {p}: measured / ground truth",
                     f"{fmt(m)} / {fmt(v)}" + (f" ({d.get('labels_source')})" if m is not None else "")])
    if iou:
        for p, v in iou.items():
            rows.append([f"IoU {p}", cell(v, _source(res, "segment/segmentation.json"),
                                          [*(_find_iou(res.json['segmentation'])[0]), p])])
    else:
        rows.append(["IoU per phase", "— (segmentation did not run)"])
    return section("scores", "Scores against the ground truth", [
        table_block(["score", "value"], rows, cls="kv",
                    caption="Drift error: registration's drift minus the phantom's true drift, "
                    "RMS and maximum of the in-plane error over the valid slices (made by the "
                    "report from drift.csv and ground_truth.zarr, stored in report.json).")])


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v
