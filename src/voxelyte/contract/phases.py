"""The phase table: names, label values, materials, roles, conductivity lookup."""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from voxelyte.errors import InputError

#: Phase roles: what a phase does in the cell; stages find a phase by its role, not its name.
ROLES = ("active_material", "electrolyte", "pore", "binder", "infiltrant", "other")
#: Role of a phase whose table entry gives none, by its name (the demo's names).
_ROLE_BY_NAME = {"pore": "pore", "cam": "active_material", "se": "electrolyte",
                 "cbd": "binder", "binder": "binder"}
CONDUCTIVITY_KINDS = ("electronic", "ionic")


class PhaseTable(Mapping):
    """The sample's phases: name -> spec dict with an int ``label`` and material data.

    A read-only mapping (``table[name]["label"]``), built from the sample file's ``phases``
    (``{name: {label: int, ...}}`` or ``{name: int}``) and checked: non-empty, labels
    non-negative integers, unique.

    Parameters
    ----------
    phases : dict or PhaseTable
        The phase table of the sample file.
    """

    def __init__(self, phases):
        if isinstance(phases, PhaseTable):
            phases = phases._specs
        if not isinstance(phases, dict) or not phases:
            raise InputError("phase table is empty", field="phases",
                             expected="{name: {label: int, ...}}", found=phases)
        specs, seen = {}, {}
        for name, spec in phases.items():
            spec = spec if isinstance(spec, dict) else {"label": spec}
            label = spec.get("label")
            if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or label < 0:
                raise InputError("phase label must be a non-negative integer",
                                 field=f"phases.{name}.label", expected="int >= 0", found=label)
            if int(label) in seen:
                raise InputError(f"label {label} used by phases '{seen[int(label)]}' and '{name}'",
                                 field=f"phases.{name}.label", expected="unique labels",
                                 found=label)
            seen[int(label)] = name
            specs[str(name)] = dict(spec, label=int(label))
        self._specs = specs

    def __getitem__(self, name):
        return self._specs[name]

    def __iter__(self):
        return iter(self._specs)

    def __len__(self):
        return len(self._specs)

    def __repr__(self):
        return f"PhaseTable({self._specs!r})"

    @property
    def labels(self) -> dict[str, int]:
        """Phase name -> label value.

        Returns
        -------
        dict of str to int
            ``{name: label}`` in table order (a new dict on each access).
        """
        return {name: spec["label"] for name, spec in self._specs.items()}

    def role(self, name: str) -> str:
        """The phase's role (``ROLES``): its ``role`` entry, else inferred from common names
        (pore, CAM, SE, CBD), else ``'other'``.

        Parameters
        ----------
        name : str
            A phase name of the table (KeyError otherwise); the name inference ignores case.

        Returns
        -------
        str
            One of ``ROLES``: 'active_material', 'electrolyte', 'pore', 'binder',
            'infiltrant' or 'other'.
        """
        return self._specs[name].get("role") or _ROLE_BY_NAME.get(name.lower(), "other")

    def with_role(self, role: str) -> list[str]:
        """Names of the phases with this role, in table order.

        Parameters
        ----------
        role : str
            A role of ``ROLES`` (as given by :meth:`role`); an unknown role matches no phase.

        Returns
        -------
        list of str
            The matching phase names, in table order; empty if none.
        """
        return [name for name in self._specs if self.role(name) == role]

    def conductivities_S_cm(self, kind: str, *, sample: str | None = None) -> dict[str, float]:
        """Bulk conductivity (S cm⁻¹) of every phase for ``kind`` ('electronic' or 'ionic'),
        checked: present, finite and >= 0.

        Parameters
        ----------
        kind : {'electronic', 'ionic'}
            Conduction kind; reads each phase's ``sigma_<kind>_S_cm`` entry.
        sample : str, optional
            Sample name, named in errors.

        Returns
        -------
        dict of str to float
            ``{phase name: σ}`` in S cm⁻¹, table order. Raises InputError for an unknown kind
            or a phase whose value is missing, non-finite or negative.
        """
        if kind not in CONDUCTIVITY_KINDS:
            raise InputError("unknown conduction kind", sample=sample, field="kind",
                             expected=" or ".join(CONDUCTIVITY_KINDS), found=kind)
        key = f"sigma_{kind}_S_cm"
        bulk = {}
        for name, spec in self._specs.items():
            value = spec.get(key)
            if value is None:
                raise InputError("phase conductivity missing", sample=sample,
                                 field=f"phases.{name}.{key}",
                                 expected="a conductivity in S cm⁻¹ (>= 0)", found=None)
            value = float(value)
            if not math.isfinite(value) or value < 0:
                raise InputError("phase conductivity must be finite and >= 0", sample=sample,
                                 field=f"phases.{name}.{key}", expected=">= 0 S cm⁻¹",
                                 found=value)
            bulk[name] = value
        return bulk

    def conductivity_lut(self, kind: str, *, size: int = 0, insulating_ratio: float = 0.0,
                         sample: str | None = None) -> np.ndarray:
        """Conductivity per label value (S cm⁻¹, float64) for ``kind``.

        Parameters
        ----------
        kind : {'electronic', 'ionic'}
        size : int
            Minimum length of the table (e.g. ``labels.max() + 1``).
        insulating_ratio : float
            Phases below ``insulating_ratio`` × the best conductor are set to 0 (insulating).
        sample : str, optional
            Named in errors.

        Returns
        -------
        numpy.ndarray
            ``lut[label] = σ``; label values of no phase hold 0.
        """
        bulk = self.conductivities_S_cm(kind, sample=sample)
        lut = np.zeros(max(int(size), max(self.labels.values()) + 1))
        for name, value in bulk.items():
            lut[self._specs[name]["label"]] = value
        top = lut.max(initial=0.0)
        if insulating_ratio:
            lut[lut < insulating_ratio * top] = 0.0
        return lut

    def check_labels(self, labels, *, sample: str | None = None) -> None:
        """Raise InputError if ``labels`` hold a value that no phase has.

        Parameters
        ----------
        labels : array_like of int
            A label volume (any shape), e.g. a segmentation or ground truth.
        sample : str, optional
            Sample name, named in the error.
        """
        unknown = np.setdiff1d(np.unique(np.asarray(labels)), list(self.labels.values()))
        if unknown.size:
            raise InputError("labels not in the phase table", sample=sample, field="phases",
                             expected=f"labels {sorted(self.labels.values())}",
                             found=unknown.tolist())

    def conductivity_field(self, labels, kind: str, *, floor_S_cm: float = 0.0,
                           insulating_ratio: float = 0.0, sample: str | None = None) -> np.ndarray:
        """Voxel conductivity σ(z, y, x) in S cm⁻¹ from labels (float64).

        Parameters
        ----------
        labels : array_like of int
        kind : {'electronic', 'ionic'}
        floor_S_cm : float
            Voxels below it (e.g. pore at 0) are raised to it.
        insulating_ratio : float
            See :meth:`conductivity_lut`.
        sample : str, optional

        Returns
        -------
        numpy.ndarray
        """
        lab = np.asarray(labels)
        lut = self.conductivity_lut(kind, size=int(lab.max(initial=0)) + 1,
                                    insulating_ratio=insulating_ratio, sample=sample)
        self.check_labels(lab, sample=sample)
        sigma = lut[lab]
        if floor_S_cm and floor_S_cm > 0:
            sigma = np.maximum(sigma, float(floor_S_cm))
        return sigma


def phase_table(phases) -> PhaseTable:
    """The checked :class:`PhaseTable` of a sample file's ``phases`` entry.

    Parameters
    ----------
    phases : dict or PhaseTable
        ``{name: {label: int, ...}}`` or ``{name: int}``; a PhaseTable is returned as it is.

    Returns
    -------
    PhaseTable
    """
    return phases if isinstance(phases, PhaseTable) else PhaseTable(phases)
