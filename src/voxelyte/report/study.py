"""The study report: one table with every sample's key numbers (from the samples' report.json,
themselves taken verbatim from the stage artefacts), the sample figures overlaid across samples,
the study provenance, and the table exported as CSV and netCDF."""
from __future__ import annotations

import base64
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from voxelyte import __version__
from voxelyte import plotting as vp
from voxelyte.contract import atomic_write, write_text_atomic
from voxelyte.report import figures as fg
from voxelyte.report.collect import STAGES, SampleResults, collect_sample, read_json
from voxelyte.report.descriptors import fraction_data, interface_pairs
from voxelyte.report.evaluation import iou
from voxelyte.report.html import cell, dig, figure_block, now_utc, render, section, table_block
from voxelyte.report.ssrm import descriptor_connectivity, ssrm_histograms
from voxelyte.report.transport import kappa_data, normal_axis

log = logging.getLogger(__name__)


def summary_table(docs: dict[str, dict]) -> pd.DataFrame:
    """The study's key numbers as a table.

    Parameters
    ----------
    docs : dict
        Sample -> its report.json.

    Returns
    -------
    pandas.DataFrame
        Rows: samples (index ``sample``); columns: key-number names (units in the names);
        values as in the artefacts (null: NaN).
    """
    rows = {sample: {q["name"]: q["value"] for q in doc.get("key_numbers") or []}
            for sample, doc in docs.items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "sample"
    return table


def write_exports(table: pd.DataFrame, meta: dict[str, dict], csv_path: Path,
                  nc_path: Path) -> None:
    """Write the summary table as CSV and netCDF.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`summary_table`.
    meta : dict
        Key-number name -> ``label``, ``unit``, ``source_pattern``.
    csv_path, nc_path : Path
        The CSV (one row per sample) and the netCDF file (dimension ``sample``, one variable
        per key number with ``long_name``, ``units`` and ``source`` attributes).

    Returns
    -------
    None
    """
    import xarray as xr

    write_text_atomic(table.to_csv(), csv_path)
    ds = xr.Dataset(coords={"sample": np.array(list(table.index), dtype=object)})
    for col in table.columns:
        values = table[col]
        if values.map(lambda v: isinstance(v, str)).any():
            data = values.fillna("").astype(str).to_numpy(dtype=object)
        else:
            data = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        m = meta.get(col, {})
        ds[col] = ("sample", data, {"long_name": m.get("label", col), "units": m.get("unit", ""),
                                     "source": m.get("source_pattern", "")})
    ds.attrs.update({"title": "voxelyte study summary", "voxelyte_version": __version__})
    atomic_write(nc_path, lambda tmp: ds.to_netcdf(tmp, engine="scipy", format="NETCDF3_64BIT"))


def _data_uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _key_meta(docs: dict[str, dict]) -> dict[str, dict]:
    meta = {}
    for s, doc in docs.items():
        for q in doc.get("key_numbers") or []:
            pattern = (q.get("source") or "").replace(s, "<sample>", 1)
            meta.setdefault(q["name"], {"label": q["label"], "unit": q["unit"],
                                        "source_pattern": pattern})
    return meta


def summary_section(docs: dict, results: dict, samples: list[str], meta: dict,
                    exports: tuple[Path, Path]) -> dict:
    """The study's summary section: key numbers (rows) by sample (columns), the exports, the
    stages that ran and links to the sample pages.

    Parameters
    ----------
    docs : dict
        Sample -> report.json.
    results : dict
        Sample -> SampleResults.
    samples : list of str
    meta : dict
        Key-number name -> label, unit, source pattern.
    exports : (Path, Path)
        summary.csv and summary.nc (embedded as downloads).

    Returns
    -------
    dict
        A section.
    """
    rows = []
    for name, m in meta.items():
        row = [m["label"], m["unit"]]
        for s in samples:
            q = next((q for q in docs[s].get("key_numbers") or [] if q["name"] == name), None)
            row.append({"text": "—"} if q is None
                       else cell(q["value"], q.get("source"), q.get("key")))
        rows.append(row)
    stages_rows = [[stage, *[{"text": "ran" if results[s].ran(stage) else "did not run",
                              "cls": "ok" if results[s].ran(stage) else "missing"}
                             for s in samples]] for stage in STAGES]
    csv_path, nc_path = exports
    return section("summary", "Summary table", [
        table_block(["quantity", "unit", *samples], rows, cls="summary",
                    caption="Key numbers of every sample, as written by the stages "
                    "(hover a value for its source file). Download: "),
        {"type": "downloads", "links": [
            {"text": "summary.csv", "href": _data_uri(csv_path, "text/csv")},
            {"text": "summary.nc (netCDF)", "href": _data_uri(nc_path, "application/x-netcdf")}]},
        table_block(["stage", *samples], stages_rows, caption="Stages that ran per sample."),
        table_block(["per-sample reports"], [[{"text": s, "href": f"{s}/report.html"}]
                                             for s in samples])])


def overlay_data(results: dict[str, SampleResults]) -> dict:
    """The data of the overlaid study figures, per sample.

    Parameters
    ----------
    results : dict
        Sample -> SampleResults.

    Returns
    -------
    dict
        Figure name -> {sample: data} (``ssrm``: {(sample, phase): histogram} of the carrier
        phase), and ``reference``: the interface areas' reference phase.
    """
    out = {k: {} for k in ("fractions", "chords", "interfaces", "thickness", "particles",
                           "profiles", "kappa", "drift", "iou", "ssrm")}
    out["reference"] = "CAM"
    for s, res in results.items():
        d = res.descriptors
        if d is not None:
            out["fractions"][s] = fraction_data(res)
            out["chords"][s] = res.tables.get("chord_length_distribution")
            pairs = interface_pairs(d, res.phases())
            out["interfaces"][s] = {k: v for k, (_, v, r) in pairs.items()}
            out["reference"] = next((r for _, _, r in pairs.values()), out["reference"])
            out["thickness"][s] = res.tables.get("local_thickness_distribution")
            out["particles"][s] = res.tables.get("particle_sizes")
            out["profiles"][s] = res.tables.get("through_thickness_profile")
        if res.json.get("transport"):
            out["kappa"][s] = kappa_data(res.json["transport"], normal_axis(res))
        if res.drift is not None:
            out["drift"][s] = {k: res.drift[k] for k in ("z_um", "dy_um", "dx_um")}
        if iou(res):
            out["iou"][s] = iou(res)
        if res.json.get("ssrm"):
            carrier = dig(res.json, "ssrm", "connectivity", "carrier_phase")
            for phase, hist in ssrm_histograms(res.json["ssrm"]).items():
                if carrier is None or phase == carrier:
                    out["ssrm"][(s, phase)] = hist
    return out


def _figure_section(sid: str, title: str, uri: str | None, caption: str, stage: str) -> dict:
    if uri is None:
        return section(sid, title, [],
                       missing=f"No sample has run the {stage} stage: nothing to compare.")
    return section(sid, title, [figure_block(uri, caption, title)])


def figure_sections(results: dict[str, SampleResults], colors: dict) -> list[dict]:
    """The overlaid figures of the study (one section each).

    Parameters
    ----------
    results : dict
        Sample -> SampleResults.
    colors : dict
        Phase colours.

    Returns
    -------
    list of dict
    """
    o = overlay_data(results)
    ref = o["reference"]
    fs = _figure_section
    return [
        fs("fractions", "Volume fractions", fg.volume_fraction_figure(o["fractions"], colors),
           "Volume fractions per phase and sample (Minnmann et al. 2024, Fig. 4); "
           "black bars: nominal; diamonds: ground truth (phantoms).", "descriptors"),
        fs("chords", "Chord-length distributions", fg.chord_length_figure(o["chords"], colors),
           "Chord-length distributions per phase, all axes pooled (Fig. 5a).",
           "descriptors"),
        fs("interfaces", "Interface areas",
           fg.interface_figure(o["interfaces"], colors, reference=ref),
           f"Specific interface areas per {ref} mass (Fig. 5c).", "descriptors"),
        fs("sizes", "Size distributions",
           fg.size_figure(o["thickness"], o["particles"], colors),
           "Local thickness per phase and watershed particle sizes.", "descriptors"),
        fs("profiles", "Through-thickness profiles", fg.profile_figure(o["profiles"], colors),
           "Phase volume fractions along the electrode normal.", "descriptors"),
        fs("tortuosity", "Tortuosity factors", fg.kappa_figure(o["kappa"], colors),
           "Electronic and ionic tortuosity factors along the electrode normal, "
           "simulated vs experiment (Fig. 6b).", "transport"),
        fs("ssrm", "Simulated SSRM",
           fg.ssrm_figure(None, None, o["ssrm"] or None, None, colors),
           "Histograms of log₁₀ R of the simulated SSRM maps, tip positions on the "
           "carrier phase (Gamo et al. SI).", "ssrm"),
        fs("segmentation", "Segmentation scores", fg.iou_figure(o["iou"], colors),
           "IoU per phase against the ground truth (phantoms, evaluate stage).",
           "evaluate"),
        fs("registration", "Registration drift", fg.drift_figure(o["drift"]),
           "Estimated drift per slice.", "register"),
    ]


def _ordering_rows(conn: dict, key: str, what: str) -> list:
    from voxelyte import ssrm

    rows = []
    for p in ssrm.isolation_ordering(conn, key)["pairs"]:
        (a, c), (pa, pc), (ra, rc) = p["samples"], p["ssrm"], p["reference"]
        verdict = ("agrees" if p["resolved"] else "not resolved (within 2 SE)") \
            if p["agree"] else "DISAGREES"
        rows.append([what, f"{a} vs {c}", pa, pc, ra, rc,
                     {"text": verdict, "cls": "ok" if p["agree"] else "missing"}])
    return rows


def ssrm_consistency_section(results: dict[str, SampleResults], samples: list[str]) -> dict:
    """Do the SSRM maps rank the samples' isolated carrier pixels as the connectivity
    descriptor (whole scanned face, descriptors.json) and the whole-volume geometry (the mapped
    pixels, ssrm.json) do? (:func:`voxelyte.ssrm.isolation_ordering`).

    Parameters
    ----------
    results : dict
        Sample -> SampleResults.
    samples : list of str

    Returns
    -------
    dict
        A section (missing with fewer than two SSRM results).
    """
    conn = {s: {**dig(results[s].json, "ssrm", "connectivity"),
                **descriptor_connectivity(results[s])} for s in samples
            if isinstance(dig(results[s].json, "ssrm", "connectivity"), dict)}
    if len(conn) < 2:
        return section("consistency", "Consistency checks", [],
                       missing="Fewer than two samples ran the ssrm stage: nothing to rank.")
    descriptor_key = next((k for c in conn.values() for k in c if k.startswith("connectivity_")
                           and "_surface_unconnected_" in k), None)
    rows = []
    for key, what in ((descriptor_key, "connectivity descriptor, whole scanned face"),
                      ("isolated_fraction_geometric_whole_volume",
                       "geometry of the whole volume, mapped pixels")):
        if key is not None:
            rows += _ordering_rows(conn, key, what)
    carrier = next((c.get("carrier_phase") for c in conn.values()), "carrier")
    return section("consistency", "Consistency checks", [table_block(
        ["reference", "samples", "SSRM isolated (1st)", "SSRM isolated (2nd)",
         "reference (1st)", "reference (2nd)", "ordering"], rows,
        caption=f"Fraction of mapped {carrier} surface pixels above the SSRM isolation "
                "threshold, per sample pair, against the fraction whose cluster does not reach "
                "the counter electrode; a pair agrees when both rank the samples alike (or the "
                "reference does not resolve them within two standard errors of the pixel "
                "sampling). A mapped crop can disagree with the whole-volume geometry: see the "
                "SSRM crop setting.")])


def study_provenance_section(path) -> dict:
    """The study's provenance section from results/<study>/provenance.json.

    Parameters
    ----------
    path : str or Path or None

    Returns
    -------
    dict
        A section: every rule run with its benchmark, the git commit and package versions.
    """
    doc = read_json(Path(path)) if path else None
    if doc is None:
        return section("provenance", "Provenance", [],
                       missing="No study provenance (provenance.json) yet.")
    rows, total = [], 0.0
    for run in doc.get("runs", []):
        bench = run.get("benchmark") or {}
        total += float(bench.get("s") or 0)
        rows.append([run.get("sample"), run.get("rule"), run.get("created_utc"), bench.get("s"),
                     bench.get("max_rss")])
    git = doc.get("git") or {}
    kv = [["study", doc.get("study")], ["voxelyte", doc.get("voxelyte_version")],
          ["git commit", (git.get("commit") or "—") + (" (modified)" if git.get("dirty") else "")],
          ["gathered (UTC)", doc.get("created_utc")],
          ["sum of rule wall times (s)", cell(total)]]
    pk = [[k, v] for k, v in (doc.get("packages") or {}).items()]
    return section("provenance", "Provenance", [
        table_block(["", ""], kv, cls="kv"),
        table_block(["sample", "rule", "finished (UTC)", "wall time (s)", "peak RSS (MB)"], rows,
                    caption="Every rule run of the study (provenance.json, with Snakemake's "
                    "benchmarks); inputs, hashes and parameters are in each sample's report."),
        {"type": "details", "summary": "package versions",
         "blocks": [table_block(["package", "version"], pk, cls="kv")]}])


def _legend_text(samples: list[str]) -> str:
    parts = []
    for s, st in vp.sample_styles(samples).items():
        line = st["linestyle"] if isinstance(st["linestyle"], str) else "dash-dot-dot"
        parts.append(f"{s} ({line}{', hatch ' + st['hatch'] if st['hatch'] else ', solid'})")
    return ", ".join(parts)


def build_study_report(study_dir, out_html, *, study: str, samples: list[str],
                       sample_configs: dict | None = None, description: str = "",
                       provenance_path=None) -> pd.DataFrame:
    """Write the study report page with summary.csv and summary.nc beside it.

    Parameters
    ----------
    study_dir : str or Path
        results/<study> (the sample folders and their report.json).
    out_html : str or Path
        The page.
    study : str
    samples : list of str
    sample_configs : dict, optional
        Sample -> its sample file's content.
    description : str
        The study's description (page subtitle).
    provenance_path : str or Path, optional
        The study's provenance.json.

    Returns
    -------
    pandas.DataFrame
        The summary table (:func:`summary_table`).
    """
    t0 = time.perf_counter()
    study_dir, out_html = Path(study_dir), Path(out_html)
    docs = {s: read_json(study_dir / s / "report.json") or {"sample": s, "key_numbers": []}
            for s in samples}
    results = {s: collect_sample(study_dir / s, name=s, config=(sample_configs or {}).get(s))
               for s in samples}
    colors = vp.phase_colors(list(dict.fromkeys(p for r in results.values() for p in r.phases())))
    table = summary_table(docs)
    meta = _key_meta(docs)
    exports = (out_html.with_name("summary.csv"), out_html.with_name("summary.nc"))
    write_exports(table, meta, *exports)
    sections = [summary_section(docs, results, samples, meta, exports),
                *figure_sections(results, colors), ssrm_consistency_section(results, samples),
                study_provenance_section(provenance_path)]
    html_text = render("sample.html.j2", title=f"voxelyte study report — {study}",
                       heading=f"Study {study}", subtitle=" ".join(description.split()),
                       sections=sections, created=now_utc(), version=__version__,
                       colors=colors, legend_samples=_legend_text(samples))
    write_text_atomic(html_text, out_html)
    log.info("study report %.1f MB in %.1f s", out_html.stat().st_size / 1e6,
             time.perf_counter() - t0)
    return table
