"""Pieces of a report page: value formatting, checkable table cells, blocks (figure, table,
text), sections, and the rendering of the page template."""
from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from voxelyte.report.collect import STAGES

_TEMPLATES = Path(__file__).with_name("templates")
_UNITS = [("_m2_g", "m² g⁻¹"), ("_um-1", "µm⁻¹"), ("_um-2", "µm⁻²"), ("_um2", "µm²"),
          ("_um3", "µm³"), ("_um", "µm"), ("_S_cm", "S cm⁻¹"), ("_ohm", "Ω"), ("_px", "px"),
          ("_s", "s"), ("_MB", "MB")]


# --------------------------------------------------------------------------- values and cells
def fmt(value: Any) -> str:
    """Display text of a value.

    Parameters
    ----------
    value : any

    Returns
    -------
    str
        4 significant digits (scientific below 1e-3 and from 1e5), thousands separated by a
        thin space for integers from 10 000, ∞ for infinity, 'n/a' for NaN, '—' for None,
        yes / no for booleans; never 'nan'.
    """
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
    """A value as the JSON text of a cell's ``data-value`` attribute (non-finite as strings)."""
    if isinstance(value, (float, np.floating)) and not math.isfinite(float(value)):
        return json.dumps(str(float(value)))
    if isinstance(value, np.generic):
        value = value.item()
    return json.dumps(value)


def cell(value: Any, source: str | None = None, key: Iterable | None = None) -> dict:
    """A table cell showing ``value``, checkable against its artefact.

    Parameters
    ----------
    value : any
        The value as read from the artefact.
    source : str, optional
        The artefact's path relative to the study folder.
    key : sequence, optional
        The value's path in that JSON document.

    Returns
    -------
    dict
        ``text`` (:func:`fmt`), ``num`` and, with a source, ``source``, ``key`` and ``value``
        (JSON texts) that the page writes into ``data-`` attributes.
    """
    out = {"text": fmt(value), "num": isinstance(value, (int, float)) and not isinstance(value, bool)}
    if source is not None:
        out["source"] = source
        out["key"] = json.dumps(list(key)) if key is not None else None
        out["value"] = _json_value(value)
    return out


def key_cell(doc: dict, key: Any, source: str | None, path: Iterable = ()) -> dict | str:
    """The cell of one key of a JSON mapping, or "—" where the mapping lacks the key.

    Parameters
    ----------
    doc : dict
        The mapping (a document or a part of one).
    key : any
        The key shown.
    source : str or None
        The artefact's path relative to the study folder.
    path : sequence
        Path of ``doc`` in that document (empty: the document itself).

    Returns
    -------
    dict or str
        :func:`cell` of ``doc[key]`` checkable at ``[*path, key]``; "—" without the key.
    """
    return cell(doc.get(key), source, [*path, key]) if key in doc else "—"


def phase_cell(phase: str, colors: dict) -> dict:
    """A table cell naming a phase, with its colour swatch.

    Parameters
    ----------
    phase : str
        Phase name.
    colors : dict
        Phase colours (a phase without one gets no swatch).

    Returns
    -------
    dict
        ``text`` and ``swatch``.
    """
    return {"text": phase, "swatch": colors.get(phase)}


def dig(doc: Any, *keys) -> Any:
    """A nested value of a JSON document.

    Parameters
    ----------
    doc : dict or list
    *keys : str or int
        The path.

    Returns
    -------
    object or None
        ``doc[k1][k2]...``, None when any level is missing.
    """
    for k in keys:
        if isinstance(doc, dict) and k in doc:
            doc = doc[k]
        elif isinstance(doc, list) and isinstance(k, int) and -len(doc) <= k < len(doc):
            doc = doc[k]
        else:
            return None
    return doc


def unit_of(name: str) -> str:
    """The unit of a key from its suffix.

    Parameters
    ----------
    name : str
        A key such as ``mean_chord_length_CAM_um``.

    Returns
    -------
    str
        The unit ('µm'), or '–' (dimensionless) when the name has no unit suffix.
    """
    for suffix, unit in _UNITS:
        if name.endswith(suffix):
            return unit
    return "–"


def pretty(name: str) -> str:
    """A key as a label.

    Parameters
    ----------
    name : str

    Returns
    -------
    str
        Underscores as spaces, the unit suffix as '(unit)'.
    """
    for suffix, unit in _UNITS:
        if name.endswith(suffix):
            return f"{name[:-len(suffix)].replace('_', ' ')} ({unit})"
    return name.replace("_", " ")


def inline(doc) -> str:
    """A small nested mapping on one line.

    Parameters
    ----------
    doc : dict or scalar

    Returns
    -------
    str
        'a: x; b: 1' (nested mappings likewise).
    """
    if isinstance(doc, dict):
        return "; ".join(f"{pretty(str(k))}: {inline(v)}" for k, v in doc.items())
    return fmt(doc) if not isinstance(doc, str) else doc


# --------------------------------------------------------------------------- blocks
def figure_block(uri: str | None, caption: str, alt: str) -> dict | None:
    """A figure block.

    Parameters
    ----------
    uri : str or None
        The image as a data URI (None: nothing drawn).
    caption, alt : str

    Returns
    -------
    dict or None
        None when there is no image.
    """
    return {"type": "figure", "uri": uri, "caption": caption, "alt": alt} if uri else None


def table_block(header: list[str], rows: list[list], caption: str = "", cls: str = "") -> dict | None:
    """A table block.

    Parameters
    ----------
    header : list of str
    rows : list of list
        Cells: :func:`cell` dicts, strings, or values (formatted with :func:`fmt`).
    caption, cls : str
        Table caption and CSS class ('kv' for a two-column key / value table).

    Returns
    -------
    dict or None
        None when there are no rows.
    """
    rows = [[c if isinstance(c, dict) else
             {"text": fmt(c) if not isinstance(c, str) else c,
              "num": isinstance(c, (int, float, np.number)) and not isinstance(c, bool)}
             for c in r] for r in rows]
    return {"type": "table", "header": header, "rows": rows, "caption": caption,
            "cls": cls} if rows else None


def text_block(text: str) -> dict:
    """A paragraph block.

    Parameters
    ----------
    text : str

    Returns
    -------
    dict
    """
    return {"type": "text", "text": text}


def section(sid: str, title: str, blocks: list, *, missing: str | None = None,
            intro: str = "") -> dict:
    """A page section.

    Parameters
    ----------
    sid, title : str
        Anchor id and heading.
    blocks : list
        Blocks; None entries are dropped.
    missing : str, optional
        Why the section is empty (a stage did not run); set when no block is left.
    intro : str
        A paragraph above the blocks.

    Returns
    -------
    dict
        ``ran`` is False when the section is missing.
    """
    blocks = [b for b in blocks if b]
    if missing is None and not blocks:
        missing = "nothing to show: the stage wrote none of the artefacts this section reads"
    return {"id": sid, "title": title, "ran": missing is None, "missing": missing,
            "intro": intro, "blocks": blocks if missing is None else []}


def not_run(stage: str) -> str:
    """The note of a section whose stage did not run.

    Parameters
    ----------
    stage : str
        Rule name.

    Returns
    -------
    str
    """
    title = STAGES.get(stage, stage)
    return f"The {stage} stage ({title.lower()}) did not run for this sample: no artefact to show."


# --------------------------------------------------------------------------- rendering
def render(template: str, **context) -> str:
    """Render a page template of ``report/templates``.

    Parameters
    ----------
    template : str
        Template file name (``sample.html.j2``).
    **context
        Template variables (title, heading, subtitle, sections, created, version, colors, ...).

    Returns
    -------
    str
        The HTML text.
    """
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             trim_blocks=True, lstrip_blocks=True)
    return env.get_template(template).render(**context)


def now_utc() -> str:
    """The current time, ISO 8601 in UTC to the second.

    Returns
    -------
    str
    """
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
