"""The key numbers of a sample (report.json, the study's summary table), declared as a table:
each row names the number, its label, the artefact it is read from, its path in that JSON
document and its unit. Placeholders in braces range over what the row's group enumerates
(the phase table, the members of a mapping in the document, or the document's keys)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from voxelyte.report.collect import SampleResults
from voxelyte.report.descriptors import interface_pairs
from voxelyte.report.html import unit_of


class Row(NamedTuple):
    """One key number: ``name`` and ``label`` templates, the ``path`` template in the JSON
    document, the ``unit`` (None: from the name's suffix, :func:`~voxelyte.report.html.unit_of`)
    and, for groups over the document's keys, the regex ``match`` a key must match (its named
    groups become placeholders, each also as ``<group>_words`` with spaces for underscores)."""

    name: str
    label: str
    path: tuple
    unit: str | None = None
    match: str | None = None


@dataclass(frozen=True)
class Group:
    """Rows read from one artefact, emitted for every binding of ``over`` in turn:
    ``"once"``; ``"phases"`` (the sample's phase table, ``{phase}``); ``"keys"`` (the
    document's keys, ``{key}``); ``"interface_pairs"`` (``{key}``, ``{a}``, ``{b}``,
    ``{ref}``); or a tuple ``(path, name, ...)``: the members of the mapping at ``path``, nested
    one level per name. ``context``: more placeholders, each the first of its paths found in
    the document, else its last entry (a literal). A row is emitted when its path exists in
    the document (its value may be null)."""

    artefact: str
    over: str | tuple
    rows: tuple
    context: tuple = ()


_DESCRIPTOR_KEYS = (
    Row("{key}", "{key_words}", ("{key}",), "–", r"^surface_coverage_(?!.*particles)"),)
_DESCRIPTOR_KEYS_2 = (
    Row("{key}", "{stem_words}", ("{key}",), None,
        r"^(?P<stem>particle_d50_volume_weighted_.*?)(_um)?$"),
    Row("{key}", "{rest_words}", ("{key}",), "–",
        r"^connectivity_(?P<rest>.+_isolated_from_current_collector)$"))
_KAPPA = "κ {kind} along {axis}"

#: The key numbers in the order report.json lists them.
KEY_NUMBERS = (
    Group("descriptors", "once", (Row("labels_source", "labels", ("labels_source",)),)),
    Group("descriptors", "phases", (
        Row("volume_fraction_{phase}", "volume fraction {phase}", ("volume_fraction_{phase}",)),
        Row("volume_fraction_{phase}_nominal", "volume fraction {phase}, nominal",
            ("volume_fraction_{phase}_nominal",)))),
    Group("phantom_summary", (("volume_fraction",), "phase"), (
        Row("ground_truth_volume_fraction_{phase}", "volume fraction {phase}, ground truth",
            ("volume_fraction", "{phase}"), "–"),)),
    Group("descriptors", "phases", (
        Row("mean_chord_length_{phase}_um", "mean chord length {phase}",
            ("mean_chord_length_{phase}_um",)),)),
    Group("descriptors", "interface_pairs", (
        Row("{key}", "interface area {a}–{b} per {ref} mass", ("{key}",)),)),
    Group("descriptors", "keys", _DESCRIPTOR_KEYS),
    Group("descriptors", "phases", (
        Row("mean_local_thickness_{phase}_um", "mean local thickness {phase}",
            ("mean_local_thickness_{phase}_um",)),)),
    Group("descriptors", "keys", _DESCRIPTOR_KEYS_2),
    Group("evaluation", "once", (
        Row("drift_error_rms_px", "drift error rms vs ground truth",
            ("registration", "drift_error_rms_px")),
        Row("drift_error_max_px", "drift error max vs ground truth",
            ("registration", "drift_error_max_px")))),
    Group("evaluation", (("segmentation", "score_truth_grid", "iou"), "phase"), (
        Row("iou_{phase}", "segmentation IoU {phase}",
            ("segmentation", "score_truth_grid", "iou", "{phase}"), "–"),)),
    Group("transport", (("kappa",), "kind"), (
        Row("kappa_{kind}_simulated", _KAPPA + ", simulated", ("kappa", "{kind}", "kappa_sim"),
            "–"),
        Row("kappa_{kind}_experiment", _KAPPA + ", experiment",
            ("kappa", "{kind}", "kappa_exp"), "–"),
        Row("sigma_eff_{kind}_simulated_S_cm", "σ_eff {kind} along {axis}, simulated",
            ("kappa", "{kind}", "sigma_eff_sim_S_cm"))),
        context=(("axis", ("kappa", "{kind}", "axis"), ("settings", "electrode_normal_axis"),
                  "z"),)),
    Group("transport", (("tortuosity",), "phase", "axis"), (
        Row("tortuosity_factor_{phase}_{axis}", "τ {phase} along {axis} (flux)",
            ("tortuosity", "{phase}", "{axis}", "tortuosity_factor"), "–"),
        Row("tortuosity_factor_{phase}_{axis}_random_walk", "τ {phase} along {axis} (random walk)",
            ("tortuosity", "{phase}", "{axis}", "tortuosity_factor_random_walk"), "–"))),
    Group("ssrm", (("per_phase",), "phase"), (
        Row("ssrm_median_resistance_{phase}_ohm", "SSRM median R on {phase}",
            ("per_phase", "{phase}", "median_resistance_ohm")),)),
    Group("ssrm", "once", tuple(
        Row(f"ssrm_{k}", f"SSRM {{carrier}} {k.replace('_', ' ')}", ("connectivity", k), "–")
        for k in ("isolated_fraction_ssrm", "isolated_fraction_geometric", "pixel_agreement")),
        context=(("carrier", ("connectivity", "carrier_phase"), ""),)),
    Group("ssrm", "once", (
        Row("ssrm_dc_sigma_eff_S_cm", "SSRM full-face (DC) σ_eff", ("dc", "sigma_eff_S_cm")),)),
)

_MISSING = object()


def _lookup(doc, path):
    for k in path:
        if not isinstance(doc, dict) or k not in doc:
            return _MISSING
        doc = doc[k]
    return doc


def _members(doc, path, names, bound=None):
    """Bindings of the nested members of the mapping at ``path`` (one level per name)."""
    bound = bound or {}
    if not names:
        yield dict(bound)
        return
    mapping = _lookup(doc, [p.format(**bound) for p in path])
    for key in (mapping if isinstance(mapping, dict) else ()):
        yield from _members(doc, (*path, key), names[1:], {**bound, names[0]: key})


def _bindings(group: Group, doc: dict, res: SampleResults):
    if group.over == "once":
        return [{}]
    if group.over == "phases":
        return [{"phase": p} for p in res.phases()]
    if group.over == "keys":
        return [{"key": k, "key_words": k.replace("_", " ")} for k in doc]
    if group.over == "interface_pairs":
        return [{"key": k, "a": a, "b": b, "ref": ref}
                for (a, b), (k, _, ref) in interface_pairs(doc, res.phases()).items()]
    path, *names = group.over
    return list(_members(doc, tuple(path), names))


def _with_context(group: Group, doc: dict, bound: dict) -> dict:
    out = dict(bound)
    for name, *paths, default in group.context:
        found = (_lookup(doc, [p.format(**bound) for p in path]) for path in paths)
        out[name] = next((v for v in found if v is not _MISSING and v is not None), default)
    return out


def _matched(row: Row, bound: dict) -> dict | None:
    if row.match is None:
        return bound
    m = re.match(row.match, bound["key"])
    if m is None:
        return None
    groups = {k: v for k, v in m.groupdict().items() if v is not None}
    return {**bound, **groups, **{f"{k}_words": v.replace("_", " ") for k, v in groups.items()}}


def _group_numbers(group: Group, res: SampleResults) -> list[dict]:
    doc = res.json.get(group.artefact)
    if not isinstance(doc, dict):
        return []
    out = []
    for bound in _bindings(group, doc, res):
        bound = _with_context(group, doc, bound)
        for row in group.rows:
            b = _matched(row, bound)
            if b is None:
                continue
            path = [p.format(**b) for p in row.path]
            value = _lookup(doc, path)
            if value is _MISSING:
                continue
            name = row.name.format(**b)
            out.append({"name": name, "label": row.label.format(**b),
                        "unit": row.unit or unit_of(name), "value": value,
                        "source": res.source(group.artefact), "key": path})
    return out


def key_numbers(res: SampleResults) -> list[dict]:
    """The sample's key numbers (:data:`KEY_NUMBERS`), each with its source and JSON key.

    Parameters
    ----------
    res : SampleResults

    Returns
    -------
    list of dict
        ``{name, label, unit, value, source, key}`` in table order, then the pipeline's wall
        time (sum of the rules' benchmarks; no source) when benchmarks exist.
    """
    out = [q for group in KEY_NUMBERS for q in _group_numbers(group, res)]
    if res.benchmarks:
        total = sum(float(b.get("s") or 0) for b in res.benchmarks.values())
        out.append({"name": "pipeline_wall_time_s", "label": "pipeline wall time (sum over rules)",
                    "unit": "s", "value": total, "source": None, "key": None})
    return out
