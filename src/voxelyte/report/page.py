"""The per-sample report: the page's sections in order, report.json beside it."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from voxelyte import __version__
from voxelyte import plotting as vp
from voxelyte.contract import write_json_atomic, write_text_atomic
from voxelyte.report.collect import STAGES, SampleResults, collect_sample
from voxelyte.report.descriptors import (chords_section, fractions_section, interfaces_section,
                                         profiles_section, sizes_section)
from voxelyte.report.evaluation import evaluation_section
from voxelyte.report.html import now_utc, render
from voxelyte.report.key_numbers import key_numbers
from voxelyte.report.overview import provenance_section, sample_overview
from voxelyte.report.registration import registration_section
from voxelyte.report.segmentation import segmentation_section
from voxelyte.report.ssrm import ssrm_section
from voxelyte.report.transport import flux_section, tortuosity_section
from voxelyte.report.volumes import open_store, volumes_section

log = logging.getLogger(__name__)


def is_phantom(res: SampleResults) -> bool:
    """Whether the sample has a ground truth (a phantom) or phantom scores.

    Parameters
    ----------
    res : SampleResults

    Returns
    -------
    bool
    """
    return res.entry == "phantom"


def sample_sections(res: SampleResults, study: str, colors: dict) -> list[dict]:
    """The sections of a sample page in order (the evaluation section for phantoms only).

    Parameters
    ----------
    res : SampleResults
    study : str
    colors : dict
        Phase colours.

    Returns
    -------
    list of dict
    """
    truth_ds = open_store(res.stores["ground_truth"]) if "ground_truth" in res.stores else None
    image_stages = [registration_section(res, truth_ds),
                    segmentation_section(res, truth_ds, colors)] if res.entry != "labels" else []
    sections = [sample_overview(res, study, colors), volumes_section(res), *image_stages,
                fractions_section(res, colors), chords_section(res, colors),
                interfaces_section(res, colors), sizes_section(res, colors),
                profiles_section(res, colors), tortuosity_section(res, colors),
                flux_section(res), ssrm_section(res, colors)]
    if is_phantom(res):
        sections.append(evaluation_section(res, colors))
    return sections + [provenance_section(res)]


def sample_summary(res: SampleResults, study: str) -> dict:
    """The content of report.json.

    Parameters
    ----------
    res : SampleResults
    study : str

    Returns
    -------
    dict
        sample, study, which stages ran, the phantom's drift-error scores (evaluation.json's
        ``registration`` block, empty when none), the key numbers with their sources, the time
        and the voxelyte version.
    """
    scores = (res.json.get("evaluation") or {}).get("registration")
    stages = {s: res.ran(s) for s in STAGES if res.applies(s)}
    return {"sample": res.name, "study": study, "stages": stages,
            "scores": scores or {}, "key_numbers": key_numbers(res),
            "created_utc": now_utc(), "voxelyte_version": __version__}


def build_sample_report(sample_dir, out_html, *, study: str, sample: str | None = None,
                        config: dict | None = None, benchmarks_dir=None,
                        out_json=None) -> dict:
    """Write the per-sample report page and its report.json.

    Parameters
    ----------
    sample_dir : str or Path
        The sample's results folder.
    out_html : str or Path
        The page (self-contained HTML).
    study : str
        Study name.
    sample : str, optional
        Sample name (default: the folder's name).
    config : dict, optional
        The sample file's content.
    benchmarks_dir : str or Path, optional
        The study's Snakemake benchmarks folder.
    out_json : str or Path, optional
        report.json (default: beside the page).

    Returns
    -------
    dict
        The content of report.json (:func:`sample_summary`).
    """
    t0 = time.perf_counter()
    res = collect_sample(sample_dir, name=sample, config=config, benchmarks_dir=benchmarks_dir)
    colors = vp.phase_colors(res.phases())
    doc = sample_summary(res, study)
    html_text = render("sample.html.j2", title=f"voxelyte report — {study} / {res.name}",
                       heading=f"Sample {res.name}", subtitle=f"study {study}",
                       sections=sample_sections(res, study, colors),
                       created=doc["created_utc"], version=__version__, colors=colors)
    out_html = Path(out_html)
    write_text_atomic(html_text, out_html)
    write_json_atomic(doc, Path(out_json) if out_json else out_html.with_name("report.json"))
    log.info("%s: report %.1f MB in %.1f s", res.name, out_html.stat().st_size / 1e6,
             time.perf_counter() - t0)
    return doc
