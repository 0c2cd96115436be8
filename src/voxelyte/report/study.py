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
from voxelyte.report import build as b
from voxelyte.report import figures as fg
from voxelyte.report.collect import STAGES, collect_sample, read_json

log = logging.getLogger(__name__)


def summary_table(docs: dict[str, dict]) -> pd.DataFrame:
    """Rows: samples; columns: key-number names (units in the names), values as in the
    artefacts. Non-numeric numbers (e.g. 'inf' from report.json) become floats."""
    rows = {}
    for sample, doc in docs.items():
        row = {}
        for q in doc.get("key_numbers") or []:
            v = q["value"]
            if isinstance(v, str) and v in ("inf", "-inf", "nan"):
                v = float(v)
            row[q["name"]] = v
        rows[sample] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "sample"
    return table


def write_exports(table: pd.DataFrame, meta: dict[str, dict], csv_path: Path, nc_path: Path) -> None:
    """CSV (one row per sample) and netCDF (dimension ``sample``, one variable per key number
    with ``long_name``, ``units`` and ``source`` attributes)."""
    import xarray as xr

    b._write_text_atomic(table.to_csv(), csv_path)
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
    tmp = nc_path.with_name(f".{nc_path.name}.tmp")
    ds.to_netcdf(tmp, engine="scipy", format="NETCDF3_64BIT")
    tmp.replace(nc_path)


def _data_uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def build_study_report(study_dir, out_html, *, study: str, samples: list[str],
                       sample_configs: dict | None = None, description: str = "",
                       provenance_path=None) -> pd.DataFrame:
    """Write results/<study>/report.html (+ summary.csv, summary.nc beside it) from the samples'
    folders and report.json files. Returns the summary table."""
    t0 = time.perf_counter()
    study_dir = Path(study_dir)
    out_html = Path(out_html)
    docs, results = {}, {}
    for s in samples:
        docs[s] = read_json(study_dir / s / "report.json") or {"sample": s, "key_numbers": []}
        results[s] = collect_sample(study_dir / s, name=s,
                                    config=(sample_configs or {}).get(s))
    phase_names = list(dict.fromkeys(p for r in results.values() for p in r.phases()))
    colors = vp.phase_colors(phase_names)
    table = summary_table(docs)
    meta = {}
    for s, doc in docs.items():
        for q in doc.get("key_numbers") or []:
            m = meta.setdefault(q["name"], {"label": q["label"], "unit": q["unit"],
                                            "source_pattern": (q.get("source") or "").replace(s, "<sample>", 1)})
    csv_path = out_html.with_name("summary.csv")
    nc_path = out_html.with_name("summary.nc")
    write_exports(table, meta, csv_path, nc_path)

    # the table: rows = quantities, columns = samples
    rows = []
    for name, m in meta.items():
        row = [m["label"], m["unit"]]
        for s in samples:
            q = next((q for q in docs[s].get("key_numbers") or [] if q["name"] == name), None)
            if q is None:
                row.append({"text": "—"})
            else:
                c = b.cell(q["value"], q.get("source"), q.get("key"))
                if isinstance(q["value"], str) and q["value"] in ("inf", "-inf", "nan"):
                    c = b.cell(float(q["value"]), q.get("source"), q.get("key"))
                row.append(c)
        rows.append(row)
    stages_rows = [[stage, *[{"text": "ran" if results[s].ran(stage) else "did not run",
                              "cls": "ok" if results[s].ran(stage) else "missing"}
                             for s in samples]] for stage in STAGES]
    links = [[{"text": s, "href": f"{s}/report.html"}] for s in samples]
    overview = b.section("summary", "Summary table", [
        b.table_block(["quantity", "unit", *samples], rows, cls="summary",
                      caption="Key numbers of every sample, as written by the stages "
                      "(hover a value for its source file). Download: "),
        {"type": "downloads", "links": [
            {"text": "summary.csv", "href": _data_uri(csv_path, "text/csv")},
            {"text": "summary.nc (netCDF)", "href": _data_uri(nc_path, "application/x-netcdf")}]},
        b.table_block(["stage", *samples], stages_rows, caption="Stages that ran per sample."),
        b.table_block(["per-sample reports"], links)])

    # overlaid figures
    sections = [overview]
    vf, cld, inter, lt, parts, prof, kappa, drift, iou, logr = ({} for _ in range(10))
    ref = "CAM"
    for s, res in results.items():
        d = res.descriptors
        if d is not None:
            truth = b.dig(res.json, "phantom", "volume_fraction") or {}
            vf[s] = {p: {"measured": d.get(f"volume_fraction_{p}"),
                         "nominal": d.get(f"volume_fraction_{p}_nominal"), "truth": truth.get(p)}
                     for p in res.phases() if f"volume_fraction_{p}" in d}
            cld[s] = res.tables.get("chord_length_distribution")
            pairs = b.interface_pairs(d, res.phases())
            inter[s] = {k: v for k, (_, v, r) in pairs.items()}
            ref = next((r for _, _, r in pairs.values()), ref)
            lt[s] = res.tables.get("local_thickness_distribution")
            parts[s] = res.tables.get("particle_sizes")
            prof[s] = res.tables.get("through_thickness_profile")
        if res.json.get("transport"):
            normal = (d or {}).get("electrode_normal_axis") or res.config.get(
                "electrode_normal_axis") or "z"
            kappa[s] = b.kappa_data(res.json["transport"], normal)
        if res.drift is not None:
            dd = res.drift
            drift[s] = {"z_um": dd["z_um"], "dy_um": dd["dy_um"], "dx_um": dd["dx_um"]}
        if res.json.get("segmentation"):
            found = b._find_iou(res.json["segmentation"])
            if found:
                iou[s] = {p: v for p, v in found[1].items() if isinstance(v, (int, float))}
        if res.json.get("ssrm"):
            sj = res.json["ssrm"]
            carrier = b.dig(sj, "connectivity", "carrier_phase")
            for phase, hist in b.ssrm_histograms(sj).items():
                if carrier is None or phase == carrier:
                    logr[(s, phase)] = hist
    none = "No sample has run the {} stage: nothing to compare."

    def fig_section(sid, title, uri, caption, stage):
        if uri is None:
            return b.section(sid, title, [], missing=none.format(stage))
        return b.section(sid, title, [b.figure_block(uri, caption, title)])

    names = ", ".join(f"{s} ({st['linestyle'] if isinstance(st['linestyle'], str) else 'dash-dot-dot'}"
                      f"{', hatch ' + st['hatch'] if st['hatch'] else ', solid'})"
                      for s, st in vp.sample_styles(samples).items())
    sections += [
        fig_section("fractions", "Volume fractions", fg.volume_fraction_figure(vf, colors),
                    "Volume fractions per phase and sample (Minnmann et al. 2024, Fig. 4); black "
                    "bars: nominal; diamonds: ground truth (phantoms).", "descriptors"),
        fig_section("chords", "Chord-length distributions", fg.chord_length_figure(cld, colors),
                    "Chord-length distributions per phase, all axes pooled (Fig. 5a).", "descriptors"),
        fig_section("interfaces", "Interface areas", fg.interface_figure(inter, colors, reference=ref),
                    f"Specific interface areas per {ref} mass (Fig. 5c).", "descriptors"),
        fig_section("sizes", "Size distributions", fg.size_figure(lt, parts, colors),
                    "Local thickness per phase and watershed particle sizes.", "descriptors"),
        fig_section("profiles", "Through-thickness profiles", fg.profile_figure(prof, colors),
                    "Phase volume fractions along the electrode normal.", "descriptors"),
        fig_section("tortuosity", "Tortuosity factors", fg.kappa_figure(kappa, colors),
                    "Electronic and ionic tortuosity factors along the electrode normal, "
                    "simulated vs experiment (Fig. 6b).", "transport"),
        fig_section("ssrm", "Simulated SSRM", fg.ssrm_figure(None, None, logr or None, None, colors),
                    "Histograms of log₁₀ R of the simulated SSRM maps, tip positions on the "
                    "carrier phase (Gamo et al. SI).", "ssrm"),
        fig_section("segmentation", "Segmentation scores", fg.iou_figure(iou, colors),
                    "IoU per phase against the ground truth (phantoms).", "segment"),
        fig_section("registration", "Registration drift", fg.drift_figure(drift),
                    "Estimated drift per slice.", "register"),
    ]
    sections.append(ssrm_consistency_section(results, samples))
    sections.append(study_provenance_section(provenance_path, samples))
    created = b._now()
    html_text = b.render("sample.html.j2", title=f"voxelyte study report — {study}",
                         heading=f"Study {study}", subtitle=" ".join(description.split()),
                         sections=sections, created=created, version=__version__,
                         colors=colors, legend_samples=names)
    b._write_text_atomic(html_text, out_html)
    log.info("study report %.1f MB in %.1f s", out_html.stat().st_size / 1e6,
             time.perf_counter() - t0)
    return table


def ssrm_consistency_section(results: dict, samples: list[str]) -> dict:
    """Do the SSRM maps rank the samples' isolated carrier pixels as the connectivity
    descriptor (whole scanned face) and the whole-volume geometry (the mapped pixels) do?
    (:func:`voxelyte.ssrm.isolation_ordering`)."""
    from voxelyte import ssrm

    conn = {s: b.dig(results[s].json, "ssrm", "connectivity") for s in samples}
    conn = {s: c for s, c in conn.items() if isinstance(c, dict)}
    if len(conn) < 2:
        return b.section("consistency", "Consistency checks", [],
                         missing="Fewer than two samples ran the ssrm stage: nothing to rank.")
    descriptor_key = next((k for c in conn.values() for k in c
                           if k.startswith("descriptor_connectivity_")
                           and "_surface_unconnected_" in k), None)
    rows = []
    for key, what in ((descriptor_key, "connectivity descriptor, whole scanned face"),
                      ("isolated_fraction_geometric_whole_volume",
                       "geometry of the whole volume, mapped pixels")):
        if key is None:
            continue
        check = ssrm.isolation_ordering(conn, key)
        for p in check["pairs"]:
            (a, c), (pa, pc), (ra, rc) = p["samples"], p["ssrm"], p["reference"]
            verdict = ("agrees" if p["resolved"] else "not resolved (within 2 SE)") \
                if p["agree"] else "DISAGREES"
            rows.append([what, f"{a} vs {c}", pa, pc, ra, rc,
                         {"text": verdict, "cls": "ok" if p["agree"] else "missing"}])
    carrier = next((c.get("carrier_phase") for c in conn.values()), "carrier")
    return b.section("consistency", "Consistency checks", [b.table_block(
        ["reference", "samples", "SSRM isolated (1st)", "SSRM isolated (2nd)",
         "reference (1st)", "reference (2nd)", "ordering"], rows,
        caption=f"Fraction of mapped {carrier} surface pixels above the SSRM isolation "
                "threshold, per sample pair, against the fraction whose cluster does not reach "
                "the counter electrode; a pair agrees when both rank the samples alike (or the "
                "reference does not resolve them within two standard errors of the pixel "
                "sampling). A mapped crop can disagree with the whole-volume geometry: see the "
                "SSRM crop setting.")])


def study_provenance_section(path, samples) -> dict:
    doc = read_json(Path(path)) if path else None
    if doc is None:
        return b.section("provenance", "Provenance", [],
                         missing="No study provenance (provenance.json) yet.")
    rows = []
    total = 0.0
    for run in doc.get("runs", []):
        bench = run.get("benchmark") or {}
        total += float(bench.get("s") or 0)
        rows.append([run.get("sample"), run.get("rule"), run.get("created_utc"), bench.get("s"),
                     bench.get("max_rss")])
    git = doc.get("git") or {}
    kv = [["study", doc.get("study")], ["voxelyte", doc.get("voxelyte_version")],
          ["git commit", (git.get("commit") or "—") + (" (modified)" if git.get("dirty") else "")],
          ["gathered (UTC)", doc.get("created_utc")],
          ["sum of rule wall times (s)", b.cell(total)]]
    pk = [[k, v] for k, v in (doc.get("packages") or {}).items()]
    return b.section("provenance", "Provenance", [
        b.table_block(["", ""], kv, cls="kv"),
        b.table_block(["sample", "rule", "finished (UTC)", "wall time (s)", "peak RSS (MB)"], rows,
                      caption="Every rule run of the study (provenance.json, with Snakemake's "
                      "benchmarks); inputs, hashes and parameters are in each sample's report."),
        {"type": "details", "summary": "package versions",
         "blocks": [b.table_block(["package", "version"], pk, cls="kv")]}])
