"""The numba kernels of the conduction solver: CSR assembly, the matrix-free 7-point operator,
red-black Gauss–Seidel, restriction / prolongation, Galerkin coarse faces and the fused CG steps.

Kernels that look alike stay separate for speed: ``_row_counts`` / ``_fill`` (the two passes of
the CSR build); ``_apply_point`` / the interior loop of ``_apply_row`` and ``_gs_point`` / the
interior loop of ``_gs_row`` (the interior is one contiguous, vectorised pass, the wrap-around end
points are the scalar calls); and ``_gmg_matvec``, ``_cg_pap``, ``_cg_step`` and
``_residual_restrict``, which share the row loop around ``_apply_row`` but fuse different work into
it (A x with x·Ax; p·Ap without storing Ap; the CG update; the residual summed onto the coarse
grid), so that no pass stores an extra grid-sized vector.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


# --------------------------------------------------------------------------- CSR assembly
@njit(cache=True)
def _row_counts(idx, axis, periodic):
    nz, ny, nx = idx.shape
    shape = (nz, ny, nx)
    n = 0
    for v in idx.ravel():
        if v >= 0:
            n += 1
    counts = np.zeros(n, np.int64)
    for k in range(nz):
        for j in range(ny):
            for i in range(nx):
                row = idx[k, j, i]
                if row < 0:
                    continue
                c = 1
                pos = (k, j, i)
                for d in range(3):
                    for step in (-1, 1):
                        q = pos[d] + step
                        if q < 0 or q >= shape[d]:
                            if periodic and d != axis and shape[d] > 1:
                                q = q % shape[d]
                            else:
                                continue
                        if d == 0:
                            nb = idx[q, j, i]
                        elif d == 1:
                            nb = idx[k, q, i]
                        else:
                            nb = idx[k, j, q]
                        if nb >= 0 and nb != row:
                            c += 1
                counts[row] = c
    return counts


# Same neighbour walk as _row_counts: the second pass of the CSR build (kept separate for speed).
@njit(cache=True)
def _fill(idx, sigma, coef, axis, periodic, g_in, g_out, indptr, indices, data, diag_pos):
    nz, ny, nx = idx.shape
    shape = (nz, ny, nx)
    for k in range(nz):
        for j in range(ny):
            for i in range(nx):
                row = idx[k, j, i]
                if row < 0:
                    continue
                s = sigma[k, j, i]
                p = indptr[row]
                diag = 0.0
                pos = (k, j, i)
                # neighbours in ascending index order: -z, -y, -x, self, +x, +y, +z
                for o in range(7):
                    if o == 3:
                        diag_pos[row] = p
                        p += 1
                        continue
                    d = 2 - o if o < 3 else o - 4
                    step = -1 if o < 3 else 1
                    q = pos[d] + step
                    if q < 0 or q >= shape[d]:
                        if periodic and d != axis and shape[d] > 1:
                            q = q % shape[d]
                        else:
                            continue
                    if d == 0:
                        nb = idx[q, j, i]
                        sn = sigma[q, j, i]
                    elif d == 1:
                        nb = idx[k, q, i]
                        sn = sigma[k, q, i]
                    else:
                        nb = idx[k, j, q]
                        sn = sigma[k, j, q]
                    if nb < 0 or nb == row:
                        continue
                    g = 2.0 * s * sn / (s + sn) * coef[d]
                    indices[p] = nb
                    data[p] = -g
                    diag += g
                    p += 1
                p0 = diag_pos[row]
                indices[p0] = row
                data[p0] = diag + g_in[row] + g_out[row]



# --------------------------------------------------------------------------- CSR product
@njit(parallel=True, cache=True)
def _csr_matvec(indptr, indices, data, diag, x, y):
    """y = A x with float64 accumulation; the stored diagonal is replaced by ``diag``."""
    for i in prange(indptr.size - 1):
        acc = diag[i] * x[i]
        for p in range(indptr[i], indptr[i + 1]):
            c = indices[p]
            if c != i:
                acc += data[p] * x[c]
        y[i] = acc



# --------------------------------------------------------------------------- grid operator
@njit(cache=True)
def _wrap(k, n):
    km = k - 1 if k > 0 else n - 1
    kp = k + 1 if k < n - 1 else 0
    return km, kp


@njit(parallel=True, cache=True)
def _grid_faces(sigma, net, coef, wrap, gz, gy, gx):
    """float32 face conductances of the network (harmonic mean × area/length), 0 elsewhere."""
    nz, ny, nx = sigma.shape
    for k in prange(nz):
        kp = k + 1 if k < nz - 1 else 0
        for j in range(ny):
            jp = j + 1 if j < ny - 1 else 0
            for i in range(nx):
                ip = i + 1 if i < nx - 1 else 0
                gz[k, j, i] = 0.0
                gy[k, j, i] = 0.0
                gx[k, j, i] = 0.0
                if not net[k, j, i]:
                    continue
                s = np.float64(sigma[k, j, i])
                if net[kp, j, i] and (k < nz - 1 or (wrap[0] and nz > 1)):
                    t = np.float64(sigma[kp, j, i])
                    gz[k, j, i] = 2.0 * s * t / (s + t) * coef[0]
                if net[k, jp, i] and (j < ny - 1 or (wrap[1] and ny > 1)):
                    t = np.float64(sigma[k, jp, i])
                    gy[k, j, i] = 2.0 * s * t / (s + t) * coef[1]
                if net[k, j, ip] and (i < nx - 1 or (wrap[2] and nx > 1)):
                    t = np.float64(sigma[k, j, ip])
                    gx[k, j, i] = 2.0 * s * t / (s + t) * coef[2]


# _apply_point repeats the interior loop of _apply_row for the wrap-around end points: kept
# separate for speed (the interior stays one contiguous, vectorised pass).
@njit(cache=True)
def _apply_point(i, im, ip, xc, xkm, xkp, xjm, xjp, gkm, gkp, gjm, gjp, gx, br):
    """(A x) at point i of a row: the rows of x and of the faces around it."""
    v = xc[i]
    return (gkm[i] * (v - xkm[i]) + gkp[i] * (v - xkp[i]) + gjm[i] * (v - xjm[i])
            + gjp[i] * (v - xjp[i]) + gx[im] * (v - xc[im]) + gx[i] * (v - xc[ip]) + br[i] * v)


@njit(cache=True)
def _apply_row(xc, xkm, xkp, xjm, xjp, gkm, gkp, gjm, gjp, gx, br, out):
    """out[i] = (A x)_i along one row (x wraps at the row ends through gx[-1])."""
    nx = xc.size
    if nx == 1:
        out[0] = _apply_point(0, 0, 0, xc, xkm, xkp, xjm, xjp, gkm, gkp, gjm, gjp, gx, br)
        return
    out[0] = _apply_point(0, nx - 1, 1, xc, xkm, xkp, xjm, xjp, gkm, gkp, gjm, gjp, gx, br)
    for i in range(1, nx - 1):
        v = xc[i]
        out[i] = (gkm[i] * (v - xkm[i]) + gkp[i] * (v - xkp[i]) + gjm[i] * (v - xjm[i])
                  + gjp[i] * (v - xjp[i]) + gx[i - 1] * (v - xc[i - 1])
                  + gx[i] * (v - xc[i + 1]) + br[i] * v)
    out[nx - 1] = _apply_point(nx - 1, nx - 2, 0, xc, xkm, xkp, xjm, xjp, gkm, gkp, gjm, gjp,
                               gx, br)


@njit(cache=True)
def _brow(k, j, nz, b_in, b_out, zero):
    if k == 0:
        if nz == 1:
            return zero  # handled by the caller (both planes on one)
        return b_in[j]
    if k == nz - 1:
        return b_out[j]
    return zero


# The row loop around _apply_row repeats in _gmg_matvec, _residual_restrict, _cg_pap and _cg_step:
# kept separate for speed (each fuses its own work into the one pass; see the module docstring).
@njit(parallel=True, cache=True, fastmath=True)
def _gmg_matvec(x, gz, gy, gx, b_in, b_out, y):
    """y = A x; returns x·y (float64)."""
    nz, ny, nx = x.shape
    zero = np.zeros(nx, b_in.dtype)
    both = b_in + b_out
    tot = 0.0
    for k in prange(nz):
        km, kp = _wrap(k, nz)
        row = np.empty(nx)
        for j in range(ny):
            jm, jp = _wrap(j, ny)
            br = both[j] if nz == 1 else _brow(k, j, nz, b_in, b_out, zero)
            _apply_row(x[k, j], x[km, j], x[kp, j], x[k, jm], x[k, jp], gz[km, j], gz[k, j],
                       gy[k, jm], gy[k, j], gx[k, j], br, row)
            s = 0.0
            for i in range(nx):
                y[k, j, i] = row[i]
                s += row[i] * x[k, j, i]
            tot += s
    return tot


# _gs_point repeats the interior pass of _gs_row for the wrap-around end points: kept separate
# for speed (the interior stays one contiguous, vectorised pass).
@njit(cache=True)
def _gs_point(i, im, ip, z, zkm, zkp, zjm, zjp, rhs, gkm, gkp, gjm, gjp, gx, br):
    a0 = gkm[i]
    a1 = gkp[i]
    a2 = gjm[i]
    a3 = gjp[i]
    a4 = gx[im]
    a5 = gx[i]
    d = np.float64(a0) + a1 + a2 + a3 + a4 + a5 + br[i]
    if d > 0.0:
        z[i] = (rhs[i] + a0 * zkm[i] + a1 * zkp[i] + a2 * zjm[i] + a3 * zjp[i] + a4 * z[im]
                + a5 * z[ip]) / d
    else:
        z[i] = 0.0


@njit(cache=True)
def _gs_row(z, zkm, zkp, zjm, zjp, rhs, gkm, gkp, gjm, gjp, gx, br, i0, backward, tmp):
    """Gauss–Seidel on the points i0, i0+2, … of one row. The new values of all interior points
    are computed in one contiguous (vectorised) pass into ``tmp`` from the other colour's values,
    then the points of this colour are copied; the wrap-around end points go first and last so
    that the backward order is the exact reverse of the forward one."""
    nx = z.size
    last = nx - 1
    has_first = i0 == 0
    has_last = (last - i0) % 2 == 0 and last > 0
    lo = i0 if i0 > 0 else 2
    if not backward and has_first:
        _gs_point(0, last, 1 if nx > 1 else 0, z, zkm, zkp, zjm, zjp, rhs, gkm, gkp, gjm, gjp,
                  gx, br)
    if backward and has_last:
        _gs_point(last, last - 1, 0, z, zkm, zkp, zjm, zjp, rhs, gkm, gkp, gjm, gjp, gx, br)
    if nx > 2:
        for i in range(1, last):
            a0 = gkm[i]
            a1 = gkp[i]
            a2 = gjm[i]
            a3 = gjp[i]
            a4 = gx[i - 1]
            a5 = gx[i]
            d = a0 + a1 + a2 + a3 + a4 + a5 + br[i]
            num = (rhs[i] + a0 * zkm[i] + a1 * zkp[i] + a2 * zjm[i] + a3 * zjp[i]
                   + a4 * z[i - 1] + a5 * z[i + 1])
            tmp[i] = num / d if d > 0 else 0.0
        for i in range(lo, last, 2):
            z[i] = tmp[i]
    if not backward and has_last:
        _gs_point(last, last - 1, 0, z, zkm, zkp, zjm, zjp, rhs, gkm, gkp, gjm, gjp, gx, br)
    if backward and has_first:
        _gs_point(0, last, 1 if nx > 1 else 0, z, zkm, zkp, zjm, zjp, rhs, gkm, gkp, gjm, gjp,
                  gx, br)


@njit(cache=True)
def _gs_plane(z, rhs, gz, gy, gx, b_in, b_out, both, zero, k, color, backward):
    nz, ny, nx = z.shape
    km, kp = _wrap(k, nz)
    tmp = np.empty(nx, z.dtype)
    for jj in range(ny):
        j = ny - 1 - jj if backward else jj
        jm, jp = _wrap(j, ny)
        br = both[j] if nz == 1 else _brow(k, j, nz, b_in, b_out, zero)
        _gs_row(z[k, j], z[km, j], z[kp, j], z[k, jm], z[k, jp], rhs[k, j], gz[km, j], gz[k, j],
                gy[k, jm], gy[k, j], gx[k, j], br, (color + k + j) % 2, backward, tmp)


@njit(parallel=True, cache=True, fastmath=True)
def _gs_color(z, rhs, gz, gy, gx, b_in, b_out, color, backward):
    """Gauss–Seidel update of the voxels with (k + j + i) % 2 == color. Planes 0..nz-2 of one
    colour are independent (parallel); the last plane goes last (forward) or first (backward), so
    the backward sweep is the exact adjoint of the forward one (symmetric V-cycle)."""
    nz, ny, nx = z.shape
    zero = np.zeros(nx, b_in.dtype)
    both = b_in + b_out
    if backward:
        _gs_plane(z, rhs, gz, gy, gx, b_in, b_out, both, zero, nz - 1, color, True)
    for k in prange(nz - 1):
        _gs_plane(z, rhs, gz, gy, gx, b_in, b_out, both, zero, k, color, backward)
    if not backward and nz > 1:
        _gs_plane(z, rhs, gz, gy, gx, b_in, b_out, both, zero, nz - 1, color, False)


# The row loop around _apply_row repeats in _gmg_matvec, _residual_restrict, _cg_pap and _cg_step:
# kept separate for speed (each fuses its own work into the one pass; see the module docstring).
@njit(parallel=True, cache=True, fastmath=True)
def _residual_restrict(z, rhs, gz, gy, gx, b_in, b_out, rc):
    """rc[K, J, I] = Σ over the 2×2×2 children of (rhs − A z)."""
    nz, ny, nx = z.shape
    cz, cy, cx = rc.shape
    zero = np.zeros(nx, b_in.dtype)
    both = b_in + b_out
    for kc in prange(cz):
        row = np.empty(nx)
        acc = np.zeros((cy, cx))
        for k in range(2 * kc, min(2 * kc + 2, nz)):
            km, kp = _wrap(k, nz)
            for j in range(ny):
                jm, jp = _wrap(j, ny)
                br = both[j] if nz == 1 else _brow(k, j, nz, b_in, b_out, zero)
                _apply_row(z[k, j], z[km, j], z[kp, j], z[k, jm], z[k, jp], gz[km, j], gz[k, j],
                           gy[k, jm], gy[k, j], gx[k, j], br, row)
                r = rhs[k, j]
                a = acc[j // 2]
                for i in range(nx):
                    a[i // 2] += r[i] - row[i]
        for jc in range(cy):
            for ic in range(cx):
                rc[kc, jc, ic] = acc[jc, ic]


@njit(parallel=True, cache=True)
def _prolong_add(z, zc):
    nz, ny, nx = z.shape
    for k in prange(nz):
        for j in range(ny):
            zr = z[k, j]
            cr = zc[k // 2, j // 2]
            for i in range(nx):
                zr[i] += cr[i // 2]


@njit(parallel=True, cache=True)
def _coarse_faces(gz, gy, gx, scale, cgz, cgy, cgx):
    """Galerkin coarse faces for piecewise-constant P (sum of the fine faces crossing), × scale."""
    nz, ny, nx = gz.shape
    cz, cy, cx = cgz.shape
    for kc in prange(cz):
        for jc in range(cy):
            for ic in range(cx):
                sz = 0.0
                sy = 0.0
                sx = 0.0
                # the fine plane that crosses from coarse c to c+1 (mod n; the wrap face if odd)
                kz = min(2 * kc + 1, nz - 1)
                jy = min(2 * jc + 1, ny - 1)
                ix = min(2 * ic + 1, nx - 1)
                for j in range(2 * jc, min(2 * jc + 2, ny)):
                    for i in range(2 * ic, min(2 * ic + 2, nx)):
                        sz += gz[kz, j, i]
                for k in range(2 * kc, min(2 * kc + 2, nz)):
                    for i in range(2 * ic, min(2 * ic + 2, nx)):
                        sy += gy[k, jy, i]
                    for j in range(2 * jc, min(2 * jc + 2, ny)):
                        sx += gx[k, j, ix]
                cgz[kc, jc, ic] = sz * scale if cz > 1 else 0.0
                cgy[kc, jc, ic] = sy * scale if cy > 1 else 0.0
                cgx[kc, jc, ic] = sx * scale if cx > 1 else 0.0



# --------------------------------------------------------------------------- CG steps
# The row loop around _apply_row repeats in _gmg_matvec, _residual_restrict, _cg_pap and _cg_step:
# kept separate for speed (each fuses its own work into the one pass; see the module docstring).
@njit(parallel=True, cache=True, fastmath=True)
def _cg_pap(p, gz, gy, gx, b_in, b_out):
    """p·A p (float64) without storing A p."""
    nz, ny, nx = p.shape
    zero = np.zeros(nx, b_in.dtype)
    both = b_in + b_out
    tot = 0.0
    for k in prange(nz):
        km, kp = _wrap(k, nz)
        row = np.empty(nx)
        for j in range(ny):
            jm, jp = _wrap(j, ny)
            br = both[j] if nz == 1 else _brow(k, j, nz, b_in, b_out, zero)
            _apply_row(p[k, j], p[km, j], p[kp, j], p[k, jm], p[k, jp], gz[km, j], gz[k, j],
                       gy[k, jm], gy[k, j], gx[k, j], br, row)
            s = 0.0
            pr = p[k, j]
            for i in range(nx):
                s += row[i] * pr[i]
            tot += s
    return tot


# The row loop around _apply_row repeats in _gmg_matvec, _residual_restrict, _cg_pap and _cg_step:
# kept separate for speed (each fuses its own work into the one pass; see the module docstring).
@njit(parallel=True, cache=True, fastmath=True)
def _cg_step(x, r, p, gz, gy, gx, b_in, b_out, alpha):
    """x += α p, r −= α A p (A p recomputed row by row); returns r·r."""
    nz, ny, nx = p.shape
    zero = np.zeros(nx, b_in.dtype)
    both = b_in + b_out
    tot = 0.0
    for k in prange(nz):
        km, kp = _wrap(k, nz)
        row = np.empty(nx)
        for j in range(ny):
            jm, jp = _wrap(j, ny)
            br = both[j] if nz == 1 else _brow(k, j, nz, b_in, b_out, zero)
            _apply_row(p[k, j], p[km, j], p[kp, j], p[k, jm], p[k, jp], gz[km, j], gz[k, j],
                       gy[k, jm], gy[k, j], gx[k, j], br, row)
            s = 0.0
            xr = x[k, j]
            rr = r[k, j]
            pr = p[k, j]
            for i in range(nx):
                xr[i] += alpha * pr[i]
                v = rr[i] - alpha * row[i]
                rr[i] = v
                s += v * v
            tot += s
    return tot


@njit(parallel=True, cache=True, fastmath=True)
def _cg_dot(u, v):
    nz, ny, nx = u.shape
    tot = 0.0
    for k in prange(nz):
        for j in range(ny):
            for i in range(nx):
                tot += u[k, j, i] * np.float64(v[k, j, i])
    return tot


@njit(parallel=True, cache=True, fastmath=True)
def _cg_update_p(p, z, beta):
    nz, ny, nx = p.shape
    for k in prange(nz):
        for j in range(ny):
            for i in range(nx):
                p[k, j, i] = z[k, j, i] + beta * p[k, j, i]

