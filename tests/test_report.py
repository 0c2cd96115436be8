"""The report stage (voxelyte.report, voxelyte.plotting): partial results, numbers equal to the
artefacts, one colour per phase, and the study report as a person sees it (headless Chromium)."""
from __future__ import annotations

import base64
import io
import json
import math
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image
from scipy import ndimage

from voxelyte import config, descriptors, plotting, provenance, report
from voxelyte.contract import write_json_atomic, write_zarr_atomic
from voxelyte.report import figures

PHASES = {"pore": {"label": 0, "density_g_cm3": 0.0, "sigma_electronic_S_cm": 0.0,
                   "sigma_ionic_S_cm": 0.0},
          "CAM": {"label": 1, "density_g_cm3": 4.75, "sigma_electronic_S_cm": 0.1,
                  "sigma_ionic_S_cm": 0.0},
          "SE": {"label": 2, "density_g_cm3": 2.2, "sigma_electronic_S_cm": 1e-9,
                 "sigma_ionic_S_cm": 2e-3}}
SAMPLE_CONFIG = {"phases": PHASES, "nominal_composition": {"mass_fraction": {"CAM": 0.7, "SE": 0.3}},
                 "voxel_size_um": {"z": 0.1, "y": 0.1, "x": 0.1}, "electrode_normal_axis": "z",
                 "current_collector_side": "start",
                 "measured": {"sigma_eff_electronic_S_cm": 0.015, "sigma_eff_ionic_S_cm": 5e-5}}
ALL_SECTIONS = ("sample", "volumes", "registration", "segmentation", "fractions", "chords",
                "interfaces", "sizes", "profiles", "tortuosity", "flux", "ssrm", "provenance")
STAGES = ("phantom", "ingest", "register", "preprocess", "segment", "evaluate", "descriptors",
          "transport", "ssrm")


# --------------------------------------------------------------------------- helpers
class Page(HTMLParser):
    """Sections (id -> ran), images (src, alt), checkable cells and the visible text of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.sections, self.images, self.cells, self.text = {}, [], [], []
        self._cell = None
        self._skip = 0                                  # inside <style> / <script>
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("style", "script"):
            self._skip += 1
        elif tag == "section":
            self.sections[a["id"]] = a.get("data-ran") == "yes"
        elif tag == "img":
            self.images.append(a)
        elif tag == "td" and "data-source" in a:
            self._cell = {**a, "shown": ""}

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self._skip -= 1
        if tag == "td" and self._cell is not None:
            self.cells.append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._skip:
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell["shown"] += data


def page(path: Path) -> Page:
    return Page(Path(path).read_text(encoding="utf-8"))


def json_value(study_dir: Path, source: str, key: list):
    doc = json.loads((study_dir / source).read_text())
    for k in key:
        doc = doc[k]
    return doc


def assert_cells_equal_artefacts(pg: Page, study_dir: Path, minimum: int) -> None:
    """Every checkable cell shows the value of its artefact (read again here), formatted."""
    checked = 0
    for c in pg.cells:
        expected = json_value(study_dir, c["data-source"], json.loads(c["data-key"]))
        shown_value = json.loads(c["data-value"])
        if isinstance(expected, float) and not math.isfinite(expected):
            assert shown_value == str(expected), c
        else:
            assert shown_value == expected, c
        assert c["shown"].strip() == report.fmt(expected), c
        checked += 1
    assert checked >= minimum, f"only {checked} checkable numbers"


def assert_no_nan_text(pg: Page) -> None:
    words = " ".join(pg.text).replace("n/a", "").split()
    bad = [w for w in (w.strip(".,;:()[]") for w in words)
           if w.lower() in ("nan", "-nan", "inf") or w in ("None", "undefined")]
    assert not bad, bad


def synthetic_labels(shape=(24, 32, 32), seed=3) -> np.ndarray:
    """Three-phase blobs: smoothed noise thresholded at its 8 % and 55 % quantiles."""
    field = ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=shape), 2.0)
    lo, hi = np.quantile(field, [0.08, 0.55])
    return np.where(field < lo, 0, np.where(field < hi, 1, 2)).astype(np.uint8)


def coords(shape, voxel=0.1):
    return {a: (np.arange(n) + 0.5) * voxel for a, n in zip("zyx", shape)}


def fabricate_partial(study_dir: Path, sample: str, *, transport: bool = False,
                      shape=(24, 32, 32)) -> Path:
    """A sample folder with only ingest and descriptors (optionally transport) results, written
    by the library functions the stages use, with their provenance records and benchmarks."""
    folder = study_dir / sample
    labels = synthetic_labels(shape)
    raw = (labels.astype(np.uint16) * 900 + 500)[None].repeat(2, axis=0)
    ds = xr.Dataset({"raw": (("channel", "z", "y", "x"), raw)},
                    coords={"channel": ["BSE", "SE"], **coords(labels.shape)})
    write_zarr_atomic(ds, folder / "raw.zarr")
    scalars, tables = descriptors.compute_descriptors(
        labels, voxel_size_um=(0.1, 0.1, 0.1), phases=PHASES,
        nominal_composition=SAMPLE_CONFIG["nominal_composition"],
        **dict(config.stage_defaults()["descriptors"], two_point_max_lag_um=1.0))
    scalars = {"sample": sample, "labels_source": "synthetic test labels", **scalars}
    written = descriptors.write_descriptors(scalars, tables, folder / "descriptors")
    records = {"ingest": [folder / "raw.zarr"], "descriptors": list(written.values())}
    if transport:
        from voxelyte.transport import run_transport

        stage = dict(config.stage_defaults()["transport"], random_walk=None, flux_fields=(),
                     electrode_normal_axis="z")           # the schema's settings, no walks
        summary, _ = run_transport(labels, phases=PHASES, voxel_size_um=(0.1, 0.1, 0.1),
                                   measured=SAMPLE_CONFIG["measured"], **stage)
        write_json_atomic(summary, folder / "transport" / "transport.json")
        records["transport"] = [folder / "transport" / "transport.json"]
    for rule, outputs in records.items():
        rec = provenance.make_record(rule=rule, sample=sample, inputs={"out": outputs[0]},
                                     outputs=outputs, params={"test": True})
        write_json_atomic(rec, folder / "provenance" / f"{rule}.json")
        bench = study_dir / "benchmarks" / rule / f"{sample}.tsv"
        bench.parent.mkdir(parents=True, exist_ok=True)
        bench.write_text("s\th:m:s\tmax_rss\n1.25\t0:00:01\t123.4\n")
    return folder


# --------------------------------------------------------------------------- unit tests
def test_fmt_never_prints_nan_and_keeps_four_digits():
    assert report.fmt(float("nan")) == "n/a"
    assert report.fmt(float("inf")) == "∞"
    assert report.fmt(None) == "—"
    assert report.fmt(0.123456) == "0.1235"
    assert report.fmt(2.5e-5) == "2.500e-05"
    assert report.fmt(True) == "yes"
    assert report.fmt(12) == "12"


def test_phase_colours_are_fixed_distinct_and_shared_by_figures():
    colors = plotting.phase_colors(["pore", "CAM", "SE", "binder", "Pt", "mystery"])
    assert colors["CAM"] == plotting.OKABE_ITO["blue"]
    assert colors["SE"] == plotting.OKABE_ITO["orange"]
    assert colors["pore"] == plotting.OKABE_ITO["reddish purple"]
    assert len(set(colors.values())) == len(colors)              # one colour per phase
    assert set(colors.values()) <= set(plotting.OKABE_ITO.values())
    # order of the phase table does not change a known phase's colour
    assert plotting.phase_colors(["SE", "CAM"])["CAM"] == colors["CAM"]

    # the colours drawn are the phase colours: bar faces and label images contain them exactly
    three = plotting.phase_colors(["pore", "CAM", "SE"])

    def pixels(uri):
        img = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB")
        return {"#%02x%02x%02x" % tuple(p) for p in np.asarray(img).reshape(-1, 3)[::3].tolist()}

    bars = figures.volume_fraction_figure(
        {"S": {p: {"measured": v, "nominal": None} for p, v in
               (("pore", 0.1), ("CAM", 0.5), ("SE", 0.4))}}, three)
    lab = synthetic_labels((8, 16, 16))
    planes = [("xy", lab[4], (0, 1.6, 1.6, 0), ("x", "y"))]
    slices = figures.slices_figure([{"title": "t", "planes": planes, "kind": "labels"}],
                                   phase_labels={n: s["label"] for n, s in PHASES.items()},
                                   colors=three)
    for uri in (bars, slices):
        assert {c.lower() for c in three.values()} <= pixels(uri)


def test_report_builds_from_partial_results(tmp_path):
    """Only ingest + descriptors: those sections show, every other says it did not run, and the
    numbers on the page and in summary.csv / summary.nc are the artefacts' own."""
    study = tmp_path / "partial"
    folder = fabricate_partial(study, "P1")
    doc = report.build_sample_report(folder, folder / "report.html", study="partial",
                                     config=SAMPLE_CONFIG)
    # an image sample: the phantom's stages do not apply (not run is not failed)
    assert doc["stages"] == {s: s in ("ingest", "descriptors") for s in STAGES
                             if s not in ("phantom", "evaluate")}
    written = (folder / "report.json").read_text()
    assert json.loads(written, parse_constant=pytest.fail) == json.loads(json.dumps(doc))
    pg = page(folder / "report.html")
    assert set(ALL_SECTIONS) <= set(pg.sections)
    ran = {s for s, r in pg.sections.items() if r}
    assert ran == {"sample", "volumes", "fractions", "chords", "interfaces", "sizes", "profiles",
                   "provenance"}
    text = " ".join(pg.text)
    for stage in ("register", "segment", "transport", "ssrm"):
        assert f"The {stage} stage" in text and "did not run" in text
    assert len(pg.images) == 6 and all(i["src"].startswith(("data:image/png;base64,",
                                                            "data:image/jpeg;base64,"))
                                       for i in pg.images)
    assert "http://" not in (folder / "report.html").read_text().replace(
        "http://www.w3.org", "")                                    # nothing from the network
    assert_no_nan_text(pg)
    assert_cells_equal_artefacts(pg, study, minimum=60)

    table = report.build_study_report(study, study / "report.html", study="partial",
                                      samples=["P1"], sample_configs={"P1": SAMPLE_CONFIG})
    d = json.loads((folder / "descriptors" / "descriptors.json").read_text())
    csv = pd.read_csv(study / "summary.csv", index_col="sample")
    for key in ("volume_fraction_CAM", "volume_fraction_pore", "mean_chord_length_SE_um",
                "specific_interface_area_CAM_SE_per_CAM_mass_m2_g"):
        assert csv.loc["P1", key] == d[key] == table.loc["P1", key]
    nc = xr.open_dataset(study / "summary.nc", engine="scipy")
    assert float(nc["volume_fraction_SE"].sel(sample="P1")) == d["volume_fraction_SE"]
    assert nc["mean_chord_length_SE_um"].attrs["units"] == "µm"
    spg = page(study / "report.html")
    assert not spg.sections["tortuosity"] and spg.sections["fractions"]
    assert_no_nan_text(spg)
    assert_cells_equal_artefacts(spg, study, minimum=20)


DRIFT_SCORES = {"drift_error_rms_px": 0.25, "drift_error_max_px": 0.5, "drift_error_rms_um": 0.025,
                "drift_error_max_um": 0.05, "drift_error_slices": 16}


def write_evaluation(folder: Path, predicted: np.ndarray, truth: np.ndarray) -> dict:
    """An evaluate/evaluation.json as the evaluate stage writes it: the segmentation scored with
    voxelyte.evaluate.score on every frame, a fixed drift error."""
    from voxelyte.evaluate import score

    scores = score(predicted, truth, PHASES)
    doc = {"sample": folder.name, "registration": DRIFT_SCORES,
           "segmentation": {"score_truth_grid": scores, "score_registered_frame": scores,
                            "score_plain_frame": scores, "scoring": "test frames",
                            "false_se_rim_at_true_cam_pore_contacts": {
                                "truth_grid": {"voxels": 3, "max_thickness_voxels": 1.0},
                                "definition": "test"}},
           "timings_s": {"truth_grid_scoring_s": 0.5}}
    write_json_atomic(doc, folder / "evaluate" / "evaluation.json")
    return doc


def test_segmentation_and_transport_numbers_are_shown_as_written(tmp_path):
    """Segmentation scores of the evaluate stage (voxelyte.evaluate.score of a perturbed copy of
    the labels) and transport results (voxelyte.transport.run_transport) appear with the
    artefacts' values; report.json takes the phantom scores from evaluation.json."""
    from voxelyte.contract import volume_fractions

    study = tmp_path / "tr"
    folder = fabricate_partial(study, "T1", transport=True, shape=(16, 20, 20))
    truth = synthetic_labels((16, 20, 20))
    predicted = truth.copy()
    predicted[::3, ::4, ::5] = 2                                # some voxels wrongly SE
    info = {"sample": "T1", "method": "test",
            "volume_fraction": volume_fractions(predicted, PHASES)}
    write_json_atomic(info, folder / "segment" / "segmentation.json")
    evaluation = write_evaluation(folder, predicted, truth)
    write_zarr_atomic(xr.Dataset({"labels": (("z", "y", "x"), predicted)},
                                 coords=coords(truth.shape)), folder / "labels.zarr")
    doc = report.build_sample_report(folder, folder / "report.html", study="tr",
                                     config=SAMPLE_CONFIG)
    pg = page(folder / "report.html")
    assert pg.sections["tortuosity"] and not pg.sections["flux"] and pg.sections["segmentation"]
    assert pg.sections["evaluation"] and doc["stages"]["evaluate"]
    iou = {json.loads(c["data-key"])[-1]: float(c["shown"]) for c in pg.cells
           if json.loads(c["data-key"])[:3] == ["segmentation", "score_registered_frame", "iou"]}
    # the IoU of each phase from the confusion of truth and prediction, by hand
    for name, spec in PHASES.items():
        t, p = truth == spec["label"], predicted == spec["label"]
        assert iou[name] == pytest.approx((t & p).sum() / (t | p).sum(), rel=1e-3)
    # report.json: the phantom scores as evaluation.json has them, sourced there
    assert doc["scores"] == DRIFT_SCORES
    keyed = {q["name"]: q for q in doc["key_numbers"]}
    for name in PHASES:
        q = keyed[f"iou_{name}"]
        assert q["source"] == "T1/evaluate/evaluation.json"
        assert q["value"] == evaluation["segmentation"]["score_truth_grid"]["iou"][name]
        assert q["key"] == ["segmentation", "score_truth_grid", "iou", name]
    assert keyed["drift_error_rms_px"]["value"] == 0.25
    assert keyed["drift_error_rms_px"]["key"] == ["registration", "drift_error_rms_px"]
    t = json.loads((folder / "transport" / "transport.json").read_text())
    shown = {tuple(json.loads(c["data-key"])) for c in pg.cells
             if c["data-source"] == "T1/transport/transport.json"}
    for phase, per_axis in t["tortuosity"].items():
        for axis in per_axis:
            assert ("tortuosity", phase, axis, "tortuosity_factor") in shown
    assert ("kappa", "ionic", "kappa_exp") in shown and ("kappa", "ionic", "kappa_sim") in shown
    assert_cells_equal_artefacts(pg, study, minimum=60)
    assert_no_nan_text(pg)


def test_key_numbers_table_follows_the_artefacts():
    """Every key number names the artefact and JSON path it is read from (the declarative
    table), and a null value stays null."""
    res = report.SampleResults(name="K", folder=Path("K"), config={"phases": PHASES})
    res.json["transport"] = {"settings": {"electrode_normal_axis": "x"},
                             "kappa": {"ionic": {"phase": "SE", "kappa_sim": 2.0}},
                             "tortuosity": {"CAM": {"z": {"tortuosity_factor": None,
                                                          "percolating": False}}}}
    res.json["ssrm"] = {"connectivity": {"carrier_phase": "CAM", "isolated_fraction_ssrm": 0.1}}
    got = {q["name"]: q for q in report.key_numbers(res)}
    assert got["kappa_ionic_simulated"] == {
        "name": "kappa_ionic_simulated", "label": "κ ionic along x, simulated", "unit": "–",
        "value": 2.0, "source": "K/transport/transport.json", "key": ["kappa", "ionic", "kappa_sim"]}
    assert got["tortuosity_factor_CAM_z"]["value"] is None
    assert got["ssrm_isolated_fraction_ssrm"]["label"] == "SSRM CAM isolated fraction ssrm"
    assert "kappa_ionic_experiment" not in got and "pipeline_wall_time_s" not in got


def test_ssrm_section_shows_ssrm_json(tmp_path):
    """An SSRM result of voxelyte.ssrm.simulate on small labels: map, histogram and depth
    profile drawn, the per-phase and connectivity numbers as in ssrm.json, next to the
    connectivity descriptors of the carrier phase (descriptors.json)."""
    from voxelyte import ssrm

    study = tmp_path / "ss"
    folder = fabricate_partial(study, "S1", shape=(12, 16, 16))
    labels = synthetic_labels((12, 16, 16))
    settings = dict(config.stage_defaults()["ssrm"], n_current_fields=1)
    ds, summary = ssrm.simulate(labels, PHASES, (0.1, 0.1, 0.1), **settings, sample="S1")
    write_json_atomic(summary, folder / "ssrm.json")
    write_zarr_atomic(ds, folder / "ssrm.zarr")
    doc = report.build_sample_report(folder, folder / "report.html", study="ss",
                                     config=SAMPLE_CONFIG)
    assert doc["stages"]["ssrm"]
    pg = page(folder / "report.html")
    assert pg.sections["ssrm"]
    assert any(i["alt"].startswith("SSRM") for i in pg.images)
    shown = {tuple(json.loads(c["data-key"])) for c in pg.cells if c["data-source"] == "S1/ssrm.json"}
    for phase in PHASES:
        assert ("per_phase", phase, "median_resistance_ohm") in shown
    assert ("connectivity", "isolated_fraction_ssrm") in shown
    carrier = summary["connectivity"]["carrier_phase"]
    described = {tuple(json.loads(c["data-key"])) for c in pg.cells
                 if c["data-source"] == "S1/descriptors/descriptors.json"}
    for measure in ("isolated_from_current_collector", "percolating_z",
                    "surface_unconnected_z_start"):
        assert (f"connectivity_{carrier}_{measure}",) in described
    assert_cells_equal_artefacts(pg, study, minimum=60)
    assert_no_nan_text(pg)


# --------------------------------------------------------------------------- as a person sees it
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--hide-scrollbars", "--disable-dev-shm-usage"]


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium browser; installed with apt-get (Debian package chromium) when absent."""
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    if not shutil.which("apt-get"):
        pytest.skip("Chromium is not installed and this system has no apt-get to install it")
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        pytest.skip("Chromium is not installed and installing it needs root (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.skip(f"Chromium could not be installed ({' '.join(cmd)}: "
                        f"{done.stderr.strip()[-300:]})")
    path = shutil.which("chromium")
    if not path:
        pytest.skip("apt-get installed chromium but no chromium executable was found")
    return path


def run_chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_study_report_renders_in_headless_chromium(repo_root, tmp_path, chromium):
    """A real two-sample study through the workflow; its study report opened in Chromium: every
    section present, every figure decoded by the browser, no NaN on the page; the per-sample
    report likewise; Snakemake's own report builds."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_workflow import demo_sample, run_snakemake, run_study, write_study

    base = demo_sample(repo_root)
    samples = {}
    for name, se in (("A", 1.6), ("B", 1.0)):
        s = json.loads(json.dumps(base))
        s["phantom"].update(shape_zyx=[20, 32, 32], cam_d50_um=1.2, se_d50_um=se)
        s["stages"] = {"ingest": {"chunks_zyx": [10, 1024, 1024]},  # short walks: seconds
                       "transport": {"axes": ["z", "x"], "random_walk": {
                           "n_walkers": 200, "n_steps": 2000, "seed": 3}}}
        samples[name] = s
    study_file = write_study(tmp_path, "web", samples)
    done = run_study(repo_root, study_file)
    assert done.returncode == 0, done.stderr[-4000:]
    study = tmp_path / "results" / "web"
    html = study / "report.html"
    assert html.stat().st_size < 3e6

    # the browser's view: mark every image with what the browser decoded, then dump the DOM
    probe = tmp_path / "probe.html"
    probe.write_text(html.read_text(encoding="utf-8").replace("</body>", """<script>
      for (const img of document.images) {
        img.setAttribute('data-rendered', img.complete && img.naturalWidth > 0 ? 'yes' : 'no');
        img.setAttribute('data-width', img.naturalWidth);
      }
      document.body.setAttribute('data-text', document.body.innerText.length);
    </script></body>"""), encoding="utf-8")
    shutil.copytree(study / "A", tmp_path / "A", dirs_exist_ok=True)  # links next to the probe
    dom = run_chromium(chromium, tmp_path / "profile", "--virtual-time-budget=10000",
                       "--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    pg = Page(dom.stdout)
    expected = {"summary", "fractions", "chords", "interfaces", "sizes", "profiles",
                "registration", "tortuosity", "ssrm", "segmentation", "consistency",
                "provenance"}
    assert expected <= set(pg.sections)
    for sid in ("summary", "fractions", "chords", "interfaces", "sizes", "profiles",
                "registration", "consistency", "provenance"):
        assert pg.sections[sid], f"section {sid} empty"
    assert len(pg.images) >= 6
    for img in pg.images:
        assert img.get("data-rendered") == "yes" and int(img["data-width"]) > 200, img.get("alt")
    assert_no_nan_text(pg)
    assert_cells_equal_artefacts(pg, study, minimum=30)

    # the screenshot: a laptop-width window, the page is drawn (not blank) in the report colours
    shot = tmp_path / "study.png"
    done = run_chromium(chromium, tmp_path / "profile2", "--window-size=1366,4000",
                        f"--screenshot={shot}", html.as_uri())
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[:2] == (4000, 1366)
    hexes = {"#%02x%02x%02x" % tuple(p) for p in img.reshape(-1, 3)[::7].tolist()}
    cam, se = plotting.phase_colors(["CAM", "SE"]).values()
    assert cam.lower() in hexes and se.lower() in hexes         # bars drawn in phase colours
    assert img.std() > 20

    # a sample page in the browser, too
    sample_html = study / "A" / "report.html"
    dom = run_chromium(chromium, tmp_path / "profile3", "--dump-dom", sample_html.as_uri())
    spg = Page(dom.stdout)
    assert set(ALL_SECTIONS) <= set(spg.sections)
    assert spg.sections["volumes"] and spg.sections["registration"] and spg.sections["fractions"]
    assert_cells_equal_artefacts(spg, study, minimum=60)
    assert_no_nan_text(spg)

    # Snakemake's own report, with the report pages and the summary table in it
    done = run_snakemake(repo_root, "--cores", "1", "--configfile", str(study_file),
                         "--directory", str(tmp_path), "--report", str(tmp_path / "smk.html"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "smk.html").stat().st_size > 10_000
