"""The tiled resistance map: each tile's sub-volume factorised with the tile's face pixels last,
the rest of the volume entering through the far field of unit probe currents at the tile
corners (exact where a tile's sub-volume is the whole volume: the direct method)."""
from __future__ import annotations

import logging
import math
import time

import numpy as np

from voxelyte.ssrm.model import Model, window_resistance
from voxelyte.ssrm.pardiso import SchurSystem
from voxelyte.ssrm.solvers import probe_solve, use_direct

log = logging.getLogger("voxelyte.ssrm")

#: Relative residual of the probe solves of the tiled far field (a correction of a few % of R).
PROBE_RTOL = 1e-6
#: Probe right-hand sides handled per batch (dense n × chunk arrays of sources and solutions).
PROBE_CHUNK = 4


def tiled_resistances(model: Model, positions: np.ndarray, offsets: np.ndarray, *,
                      contact_resistance_ohm: float, tile_voxels: int, halo_voxels: int,
                      depth_voxels: int, rtol: float, progress=None) -> tuple[np.ndarray, dict]:
    """SSRM resistance of every tip position by the tiled method.

    Parameters
    ----------
    model : Model
    positions : numpy.ndarray, (n, 2)
        Tip positions (row, col) on the scanned face.
    offsets : numpy.ndarray, (k, 2)
        Tip window (:func:`voxelyte.ssrm.window_offsets`).
    contact_resistance_ohm : float
        Contact resistance in series (Ω).
    tile_voxels, halo_voxels, depth_voxels : int
        Tile side on the face, lateral margin and depth of each tile's sub-volume (voxels);
        a tile whose sub-volume is the whole volume is exact.
    rtol : float
        Relative residual of the probe solves (at least PROBE_RTOL).
    progress : callable, optional
        ``progress(done, total)`` after each tile.

    Returns
    -------
    tuple
        (R (n,) in Ω, inf where no conducting path; solver info: n_tiles, n_tiles_grown,
        n_probe_solves, probe_time_s, factor_time_s, tile_voxels, halo_voxels, depth_voxels).
    """
    tile, halo, depth = tile_voxels, halo_voxels, depth_voxels
    R = np.full(len(positions), math.inf)
    lines_r, lines_c, tiles = _tile_geometry(model, positions, offsets, tile, halo, depth)
    probes_u, t_probe = _far_field_probes(model, tiles, lines_r, lines_c, tile, rtol)
    t_factor = 0.0
    done = 0
    for t in tiles:
        Z, face_rows, seconds = _tile_block(model, t, probes_u, lines_r, lines_c)
        t_factor += seconds
        if Z is not None:
            for k, (rows, g) in zip(t["members"], t["windows"]):
                if rows.size == 0:
                    continue
                loc = np.searchsorted(face_rows, rows)
                R[k] = window_resistance(Z[np.ix_(loc, loc)], g, contact_resistance_ohm)
        done += len(t["members"])
        if Z is not None and progress:
            progress(done, len(positions))
    return R, {"n_tiles": len(tiles), "n_tiles_grown": sum(t["grown"] for t in tiles),
               "n_probe_solves": len(probes_u),
               "probe_time_s": t_probe, "factor_time_s": t_factor,
               "tile_voxels": int(tile), "halo_voxels": int(halo), "depth_voxels": int(depth)}


def _lattice(n: int, t: int) -> np.ndarray:
    """Tile boundaries (and probe lines) along one face axis: 0, t, 2t, ..., n-1."""
    lines = list(range(0, n - 1, t)) + [n - 1]
    return np.array(sorted(set(lines)))


def _probe_sources(model: Model, lines_r, lines_c, radius: float) -> dict:
    """Unit current spread over the network face pixels within ``radius`` px of each lattice
    point (growing the radius until some are found). Returns {(i, j): (rows, weights)}."""
    face_idx = model.index_map[0]
    on = face_idx >= 0
    rr, cc = np.nonzero(on)
    out = {}
    for i, r in enumerate(lines_r):
        for j, c in enumerate(lines_c):
            rad = radius
            while True:
                sel = (rr - r) ** 2 + (cc - c) ** 2 <= rad * rad
                if sel.any() or rad > max(model.face_shape):
                    break
                rad *= 1.5
            if sel.any():
                rows = face_idx[rr[sel], cc[sel]]
                out[(i, j)] = (rows, np.full(rows.size, 1.0 / rows.size))
    return out


def _enclose_isolated(bounds, depth, core, iso, boxes, halo):
    """Grow a sub-volume (r0, r1, c0, c1; depth) to hold, ``halo`` voxels from its cut sides,
    every isolated cluster that reaches the tile's core (its scanned pixels' rows / cols, top
    ``halo`` planes): cut by V such a cluster would be grounded at the cut by the probe far
    field, which the corner probes (fed through the percolating network) do not represent, and
    its leak through the matrix must stay inside V too. Deeper clusters are left to the far
    field (growing for them as well cascades into near-whole-volume tiles)."""
    (r0, r1, c0, c1), z1 = bounds, depth
    nz, nr, nc = iso.shape
    cr0, cr1, cc0, cc1 = core
    sub = iso[:max(1, min(halo, nz)), cr0:cr1, cc0:cc1]
    for i in np.unique(sub[sub > 0]).tolist():
        bz, br, bc = boxes[i - 1]
        r0, r1 = min(r0, max(0, br.start - halo)), max(r1, min(nr, br.stop + halo))
        c0, c1 = min(c0, max(0, bc.start - halo)), max(c1, min(nc, bc.stop + halo))
        z1 = max(z1, min(nz, bz.stop + halo))
    return (r0, r1, c0, c1), z1


def _tile_windows(model: Model, pos, offsets) -> list:
    """Window pixels of each position, as (rows of the global system, tip conductances)."""
    nz, nr, nc = model.sigma.shape
    windows = []
    for p in pos:
        wr, wc = p[0] + offsets[:, 0], p[1] + offsets[:, 1]
        ok = (wr >= 0) & (wr < nr) & (wc >= 0) & (wc < nc)
        wr, wc = wr[ok], wc[ok]
        rows = model.index_map[0, wr, wc]
        keep = rows >= 0
        windows.append((rows[keep], model.g_tip[wr[keep], wc[keep]]))
    return windows


def _tile_geometry(model: Model, positions, offsets, tile, halo, depth):
    """Group the positions by tile; per tile its sub-volume bounds and depth (grown for the
    isolated clusters near its pixels, ``_enclose_isolated``), window rows and whether the
    sub-volume is the whole volume (exact, no far field needed)."""
    nz, nr, nc = model.sigma.shape
    iso, boxes = None, []
    if depth < nz or halo < max(nr, nc):
        iso, boxes = model.isolated_clusters()
    lines_r, lines_c = _lattice(nr, tile), _lattice(nc, tile)
    # tile of each position: interval [lines[k], lines[k+1]) (last interval closed)
    tr = np.clip(np.searchsorted(lines_r, positions[:, 0], side="right") - 1, 0,
                 max(len(lines_r) - 2, 0))
    tc = np.clip(np.searchsorted(lines_c, positions[:, 1], side="right") - 1, 0,
                 max(len(lines_c) - 2, 0))
    groups = {}
    for k, key in enumerate(zip(tr.tolist(), tc.tolist())):
        groups.setdefault(key, []).append(k)
    tiles = []
    for (ti, tj), members in sorted(groups.items()):
        members = np.array(members)
        pos = positions[members]
        r0 = max(0, int(pos[:, 0].min() + offsets[:, 0].min()) - halo)
        r1 = min(nr, int(pos[:, 0].max() + offsets[:, 0].max()) + 1 + halo)
        c0 = max(0, int(pos[:, 1].min() + offsets[:, 1].min()) - halo)
        c1 = min(nc, int(pos[:, 1].max() + offsets[:, 1].max()) + 1 + halo)
        bounds, z1 = (r0, r1, c0, c1), depth
        if boxes:
            core = (int(pos[:, 0].min()), int(pos[:, 0].max()) + 1, int(pos[:, 1].min()),
                    int(pos[:, 1].max()) + 1)
            bounds, z1 = _enclose_isolated(bounds, depth, core, iso, boxes, halo)
        exact = bounds == (0, nr, 0, nc) and z1 == nz
        tiles.append(dict(key=(ti, tj), members=members, bounds=bounds, depth=z1,
                          grown=(bounds, z1) != ((r0, r1, c0, c1), depth),
                          windows=_tile_windows(model, pos, offsets), exact=exact))
    return lines_r, lines_c, tiles


def _far_field_probes(model: Model, tiles, lines_r, lines_c, tile, rtol) -> tuple[dict, float]:
    """One batch of global solves for unit "probe" currents at the tile corners that some
    approximate tile needs; only the rows down to the sub-volumes' depth are kept.
    Returns ({corner: potentials}, seconds)."""
    nz = model.sigma.shape[0]
    probes_u = {}
    need = sorted({(t["key"][0] + a, t["key"][1] + b) for t in tiles if not t["exact"]
                   for a in (0, 1) for b in (0, 1)})
    if not need:
        return probes_u, 0.0
    sources = _probe_sources(model, lines_r, lines_c, max(2.0, tile / 8))
    need = [c for c in need if c in sources]
    deepest = max(t["depth"] for t in tiles if not t["exact"])
    keep_rows = int(model.index_map[:min(nz, deepest + 1)].max()) + 1  # C order: by plane
    ts = time.perf_counter()
    direct = use_direct(model.A.shape[0])
    chunk = len(need) if direct else PROBE_CHUNK      # one factorisation: all at once
    for k0 in range(0, len(need), chunk):
        part = need[k0:k0 + chunk]
        B = np.zeros((model.A.shape[0], len(part)))
        for k, c in enumerate(part):
            rows, wts = sources[c]
            B[rows, k] = wts
        U = probe_solve(model, B, max(rtol, PROBE_RTOL))
        for k, c in enumerate(part):
            probes_u[c] = np.ascontiguousarray(U[:keep_rows, k])
        del B, U
        log.info("far-field probes: %d / %d solved", min(k0 + chunk, len(need)), len(need))
    return probes_u, time.perf_counter() - ts


def _tile_block(model: Model, t: dict, probes_u: dict, lines_r, lines_c):
    """The window block Z of A⁻¹ of one tile: the sub-volume's inverse face block plus the far
    field of its corner probes. Returns (Z or None for an empty tile, face rows, seconds)."""
    idx = model.index_map
    (ti, tj), windows = t["key"], t["windows"]
    r0, r1, c0, c1 = t["bounds"]
    sub = idx[:t["depth"], r0:r1, c0:c1]
    vrows = np.sort(sub[sub >= 0])
    face_rows = np.unique(np.concatenate([w[0] for w in windows] + [np.zeros(0, np.int64)]))
    if face_rows.size == 0 or vrows.size == 0:
        return None, face_rows, 0.0
    local = np.searchsorted(vrows, face_rows)
    A_VV = model.A[vrows][:, vrows].tocsr()
    ts = time.perf_counter()
    system = SchurSystem(A_VV, local)
    Z = system.inverse_block()
    seconds = time.perf_counter() - ts
    corners = [(ti + a, tj + b) for a in (0, 1) for b in (0, 1)]
    corners = [c for c in corners if c in probes_u] if not t["exact"] else []
    if corners:
        ts = time.perf_counter()
        C = _corner_potentials(model, system, vrows, corners, probes_u)
        seconds += time.perf_counter() - ts
        fr, fc = np.nonzero(idx[0] >= 0)          # face rows come first, in C order
        face_pos = np.stack([fr, fc], 1)[face_rows]
        Wt = _corner_weights(face_pos, lines_r, lines_c, ti, tj, corners)
        corr = C @ Wt.T                   # corr[j, m]: potential at j for a source at m
        Z = Z + 0.5 * (corr + corr.T)
    system.release()
    return Z, face_rows, seconds


def _corner_potentials(model: Model, system: SchurSystem, vrows, corners, probes_u):
    """(face, corners): the potential each corner probe's far field (its potentials outside
    the sub-volume V, exact: A_VV x_V = −A_VΓ u_Γ) imposes on the tile's face pixels."""
    A_Vall = model.A[vrows][:, :probes_u[corners[0]].size]
    rhs = np.zeros((vrows.size, len(corners)))
    for k, c in enumerate(corners):
        u = probes_u[c].copy()
        u[vrows[vrows < u.size]] = 0.0          # potentials outside V only
        rhs[:, k] = -(A_Vall @ u)
    return system.solve_face(rhs)


def _corner_weights(face_pos, lines_r, lines_c, ti, tj, corners) -> np.ndarray:
    """Bilinear weights of each face pixel's position between the tile's corner probes."""
    wy = _interp_weight(face_pos[:, 0], lines_r, ti)
    wx = _interp_weight(face_pos[:, 1], lines_c, tj)
    Wt = np.zeros((face_pos.shape[0], len(corners)))
    for k, (ci, cj) in enumerate(corners):
        Wt[:, k] = (wy if ci > ti else 1 - wy) * (wx if cj > tj else 1 - wx)
    Wt /= np.maximum(Wt.sum(1, keepdims=True), 1e-300)
    return Wt


def _interp_weight(coord: np.ndarray, lines: np.ndarray, k: int) -> np.ndarray:
    if len(lines) < 2:
        return np.zeros_like(coord, dtype=np.float64)
    lo, hi = lines[k], lines[min(k + 1, len(lines) - 1)]
    if hi <= lo:
        return np.zeros_like(coord, dtype=np.float64)
    return np.clip((coord - lo) / (hi - lo), 0.0, 1.0)
