"""The microstructure sections of a sample page, from descriptors.json and the descriptor
tables: volume fractions, chord lengths, interface areas, sizes, through-thickness profiles and
connectivity."""
from __future__ import annotations

import re
from typing import Iterable

from voxelyte.contract import AXES
from voxelyte.report import figures as fg
from voxelyte.report.collect import SampleResults
from voxelyte.report.html import (cell, dig, figure_block, key_cell, not_run, phase_cell,
                                  pretty, section, table_block)

_PAIR = re.compile(r"^specific_interface_area_(.+)_per_(.+)_mass_m2_g$")


def interface_pairs(d: dict, phases: Iterable[str]) -> dict:
    """The per-mass interface areas of descriptors.json by phase pair.

    Parameters
    ----------
    d : dict
        descriptors.json.
    phases : iterable of str
        Phase names.

    Returns
    -------
    dict
        ``{(a, b): (key, value, reference phase)}`` in the document's key order.
    """
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


def _phase_rows(res: SampleResults, d: dict, src: str, colors: dict, keys_of) -> list:
    """One table row per phase that has any of the keys ``keys_of(phase)`` in ``d``: the phase
    with its colour swatch, then each key's value (from ``src``) or "—"."""
    rows = []
    for p in res.phases():
        keys = keys_of(p)
        if any(k in d for k in keys):
            rows.append([phase_cell(p, colors), *[key_cell(d, k, src) for k in keys]])
    return rows


def _prefixed_rows(d: dict, src: str, prefix: str) -> list:
    """Key-value rows of the keys of ``d`` that start with ``prefix``, in document order."""
    return [[pretty(k), cell(v, src, [k])] for k, v in d.items() if k.startswith(prefix)]


def fraction_data(res: SampleResults) -> dict:
    """Volume fractions of one sample for :func:`voxelyte.report.figures.volume_fraction_figure`.

    Parameters
    ----------
    res : SampleResults

    Returns
    -------
    dict
        ``{phase: {"measured", "nominal", "truth"}}`` for the phases descriptors.json has.
    """
    d = res.descriptors or {}
    truth = dig(res.json, "phantom_summary", "volume_fraction") or {}
    return {p: {"measured": d[f"volume_fraction_{p}"],
                "nominal": d.get(f"volume_fraction_{p}_nominal"), "truth": truth.get(p)}
            for p in res.phases() if d.get(f"volume_fraction_{p}") is not None}


def fractions_section(res: SampleResults, colors: dict) -> dict:
    """The volume-fractions section: measured, nominal and (phantoms) true fraction per phase.

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
    d = res.descriptors
    if d is None:
        return section("fractions", "Volume fractions", [], missing=not_run("descriptors"))
    src = res.source("descriptors")
    truth = dig(res.json, "phantom_summary", "volume_fraction") or {}
    data = fraction_data(res)
    rows = [[phase_cell(p, colors),
             cell(d[f"volume_fraction_{p}"], src, [f"volume_fraction_{p}"]),
             *[key_cell(d, k, src)
               for k in (f"volume_fraction_{p}_nominal", f"volume_fraction_{p}_minus_nominal")],
             key_cell(truth, p, res.source("phantom_summary"), ["volume_fraction"]),
             cell(d.get(f"volume_{p}_um3"), src, [f"volume_{p}_um3"])] for p in data]
    return section("fractions", "Volume fractions", [
        figure_block(fg.volume_fraction_figure({res.name: data}, colors),
                     "Volume fraction of each phase from the labels (bars, as Minnmann et "
                     "al. 2024, Fig. 4 b–d); black bars: nominal, from the prepared mass "
                     "fractions and densities (no pores); diamonds: the phantom's ground truth.",
                     "volume fractions"),
        table_block(["phase", "measured", "nominal", "measured − nominal", "ground truth",
                     "volume (µm³)"], rows)])


def chords_section(res: SampleResults, colors: dict) -> dict:
    """The chord-length section: distributions per phase and axis, mean chord lengths.

    Parameters
    ----------
    res : SampleResults
    colors : dict

    Returns
    -------
    dict
        A section.
    """
    d = res.descriptors
    t = res.tables.get("chord_length_distribution")
    if d is None:
        return section("chords", "Chord-length distributions", [], missing=not_run("descriptors"))
    src = res.source("descriptors")
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


def interfaces_section(res: SampleResults, colors: dict) -> dict:
    """The interface-area section: areas per pair (absolute, per volume, per reference mass),
    phase surface areas and surface coverages.

    Parameters
    ----------
    res : SampleResults
    colors : dict

    Returns
    -------
    dict
        A section.
    """
    d = res.descriptors
    if d is None:
        return section("interfaces", "Interface areas", [], missing=not_run("descriptors"))
    src = res.source("descriptors")
    pairs = interface_pairs(d, res.phases())
    ref = next((r for _, _, r in pairs.values()), "CAM")
    rows = []
    for (a, b), (key, v, _) in pairs.items():
        k_area, k_vol = f"interface_area_{a}_{b}_um2", f"specific_interface_area_{a}_{b}_um-1"
        rows.append([f"{a}–{b}", cell(d.get(k_area), src, [k_area]),
                     cell(d.get(k_vol), src, [k_vol]), cell(v, src, [key])])
    cov = _prefixed_rows(d, src, "surface_coverage_")
    surf = [[phase_cell(p, colors),
             cell(d.get(f"surface_area_{p}_um2"), src, [f"surface_area_{p}_um2"]),
             cell(d.get(f"specific_surface_area_{p}_per_{p}_mass_m2_g"), src,
                  [f"specific_surface_area_{p}_per_{p}_mass_m2_g"])]
            for p in res.phases() if f"surface_area_{p}_um2" in d]
    data = {pair: v for pair, (_, v, _) in pairs.items()}
    return section("interfaces", "Interface and surface areas", [
        figure_block(fg.interface_figure({res.name: data}, colors, reference=ref),
                     f"Specific interface area between phases per {ref} mass (Minnmann et "
                     "al. 2024, Fig. 5c; Eq. 1: S_ab = ½ (S_a + S_b − S_c), marching-cubes "
                     "surfaces). Bar face: colour of the second phase, edge: the first.",
                     "interface areas per mass"),
        table_block(["interface", "area (µm²)", "per volume (µm⁻¹)",
                     f"per {ref} mass (m² g⁻¹)"], rows),
        table_block(["phase", "surface area (µm²)", "per own mass (m² g⁻¹)"], surf),
        table_block(["surface coverage", "fraction"], cov, cls="kv")])


def sizes_section(res: SampleResults, colors: dict) -> dict:
    """The size section: local thickness per phase and watershed particle sizes.

    Parameters
    ----------
    res : SampleResults
    colors : dict

    Returns
    -------
    dict
        A section.
    """
    d = res.descriptors
    if d is None:
        return section("sizes", "Size distributions", [], missing=not_run("descriptors"))
    src = res.source("descriptors")
    rows = _phase_rows(res, d, src, colors, lambda p: [
        f"mean_local_thickness_{p}_um", f"median_local_thickness_{p}_um",
        f"granulometry_mean_radius_{p}_um"])
    part = _prefixed_rows(d, src, "particle_")
    uri = fg.size_figure({res.name: res.tables.get("local_thickness_distribution")},
                         {res.name: res.tables.get("particle_sizes")}, colors)
    return section("sizes", "Size distributions", [
        figure_block(uri, "Local-thickness distribution of each phase (volume fraction of the "
                     "phase per diameter) and volume-weighted equivalent diameters of the "
                     "watershed-separated particles.", "size distributions"),
        table_block(["phase", "mean local thickness (µm)", "median local thickness (µm)",
                     "granulometry mean radius (µm)"], rows),
        table_block(["particles (watershed)", "value"], part, cls="kv")])


def _connectivity_rows(res: SampleResults, d: dict, src: str, colors: dict) -> list:
    rows = []
    for p in res.phases():
        for a in AXES:
            keys = [f"connectivity_{p}_{k}_{a}" for k in ("percolating", "dead_end", "isolated")]
            if any(k in d for k in keys):
                rows.append([phase_cell(p, colors), a,
                             *[cell(d.get(k), src, [k]) for k in keys]])
    return rows


def profiles_section(res: SampleResults, colors: dict) -> dict:
    """The through-thickness section: phase fractions along the electrode normal, and the
    connectivity of each phase per axis and to the current collector.

    Parameters
    ----------
    res : SampleResults
    colors : dict

    Returns
    -------
    dict
        A section.
    """
    d = res.descriptors
    if d is None:
        return section("profiles", "Through-thickness profiles", [], missing=not_run("descriptors"))
    src = res.source("descriptors")
    rows = _phase_rows(res, d, src, colors, lambda p: [
        f"profile_mean_volume_fraction_{p}", f"profile_rsd_{p}", f"profile_slope_{p}_um-1"])
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
        table_block(["phase", "axis", "percolating", "dead end", "isolated"],
                    _connectivity_rows(res, d, src, colors),
                    caption="Fraction of each phase's volume connected to both faces of the "
                    "axis (percolating), to one (dead end) or to none (isolated)."),
        table_block(["phase", "fraction isolated from the current collector"], iso)])
