"""Sparse direct solves of the SSRM: a ctypes binding of MKL PARDISO, the face block of A⁻¹ by a
Schur complement (PARDISO, or SciPy's SuperLU where MKL is missing) and one-factorisation solves.
"""
from __future__ import annotations

import ctypes
import glob
import os
import sys

import numpy as np
import scipy.sparse as sp

from voxelyte.errors import InputError


class Pardiso:
    """Minimal ctypes binding of MKL PARDISO (the ``mkl`` wheel's libmkl_rt) for a real SPD
    matrix with a dense Schur complement on marked unknowns (iparm[35] = 2) and the partial
    forward solve (phase 331) that, with the Schur block solved densely, gives A⁻¹ b on them.

    Parameters
    ----------
    A : scipy.sparse.csr_matrix
        Symmetric positive definite matrix (its upper triangle is used).
    schur_rows : numpy.ndarray of int
        Unknowns of the Schur complement (ordered last by the factorisation).
    """

    _lib = None

    @classmethod
    def library(cls):
        """The ``pardiso`` entry point of MKL's runtime library.

        Returns
        -------
        ctypes function or None
            None where no ``libmkl_rt`` is installed in this Python environment.
        """
        if cls._lib is None:
            candidates = []
            for root in {sys.prefix, sys.base_prefix}:
                candidates += sorted(glob.glob(os.path.join(root, "lib", "libmkl_rt.so*")))
                candidates += sorted(glob.glob(os.path.join(root, "Library", "bin", "mkl_rt*.dll")))
            cls._lib = False
            for path in candidates:
                try:
                    lib = ctypes.CDLL(path)
                    fn = lib.pardiso
                except (OSError, AttributeError):
                    continue
                P = ctypes.POINTER
                i32 = P(ctypes.c_int32)
                fn.argtypes = [P(ctypes.c_int64), i32, i32, i32, i32, i32, ctypes.c_void_p,
                               i32, i32, i32, i32, i32, i32, ctypes.c_void_p, ctypes.c_void_p, i32]
                fn.restype = None
                cls._lib = fn
                break
        return cls._lib or None

    def __init__(self, A: sp.csr_matrix, schur_rows: np.ndarray):
        fn = self.library()
        if fn is None:
            raise RuntimeError("MKL PARDISO not available")
        self.fn = fn
        self.n = A.shape[0]
        U = sp.triu(A, format="csr")
        U.sort_indices()
        self.data = np.ascontiguousarray(U.data, np.float64)
        self.indptr = np.ascontiguousarray(U.indptr, np.int32)
        self.indices = np.ascontiguousarray(U.indices, np.int32)
        self.pt = np.zeros(64, np.int64)
        self.iparm = np.zeros(64, np.int32)
        self.iparm[0] = 1      # own settings
        self.iparm[1] = 2      # METIS nested dissection
        self.iparm[34] = 1     # zero-based indices
        self.iparm[35] = 2     # dense Schur complement + partial solves
        self.perm = np.zeros(self.n, np.int32)
        self.perm[schur_rows] = 1
        self.ns = int(len(schur_rows))
        out = np.zeros(self.ns * self.ns)
        self.call(12, np.zeros(self.n), out)
        self.schur = out.reshape(self.ns, self.ns)

    def call(self, phase: int, b: np.ndarray, x: np.ndarray, nrhs: int = 1) -> None:
        """Run one PARDISO phase on the right-hand sides ``b``, solutions into ``x``.

        Parameters
        ----------
        phase : int
            PARDISO phase (12 analysis + factorisation, 331 / 333 partial solves, -1 release).
        b, x : numpy.ndarray
            Right-hand sides and solutions (Fortran order for several columns).
        nrhs : int
            Number of right-hand sides.

        Returns
        -------
        None
            A nonzero PARDISO error raises RuntimeError.
        """
        err = ctypes.c_int32(0)
        P = ctypes.POINTER
        i32 = lambda v: ctypes.byref(ctypes.c_int32(v))  # noqa: E731
        self.fn(self.pt.ctypes.data_as(P(ctypes.c_int64)), i32(1), i32(1), i32(2), i32(phase),
                i32(self.n), self.data.ctypes.data, self.indptr.ctypes.data_as(P(ctypes.c_int32)),
                self.indices.ctypes.data_as(P(ctypes.c_int32)),
                self.perm.ctypes.data_as(P(ctypes.c_int32)), i32(nrhs),
                self.iparm.ctypes.data_as(P(ctypes.c_int32)), i32(0), b.ctypes.data,
                x.ctypes.data, ctypes.byref(err))
        if err.value != 0:
            raise RuntimeError(f"MKL PARDISO phase {phase} failed with error {err.value}")

    def forward(self, B: np.ndarray) -> np.ndarray:
        """Forward substitution (phase 331) for the columns of B.

        Parameters
        ----------
        B : numpy.ndarray, (n, k)

        Returns
        -------
        numpy.ndarray, (n, k)
            Rows of the Schur unknowns hold the reduced right-hand side of S x_F = y_F.
        """
        B = np.asfortranarray(B, np.float64)
        X = np.zeros_like(B, order="F")
        self.call(331, B, X, nrhs=B.shape[1])
        return X

    def release(self) -> None:
        """Free PARDISO's internal memory (phase -1).

        Returns
        -------
        None
        """
        self.call(-1, np.zeros(1), np.zeros(1))


class SchurSystem:
    """A SPD sparse matrix with the unknowns ``face`` ordered last: ``inverse_block`` =
    (A⁻¹)_FF, ``solve_face(B)`` = (A⁻¹ B)_F.

    Parameters
    ----------
    A : scipy.sparse.csr_matrix
        Symmetric positive definite matrix.
    face : numpy.ndarray of int
        The unknowns F.
    backend : {'auto', 'pardiso', 'superlu'}
        MKL PARDISO's Schur complement, or SciPy's SuperLU of the inner block; ``auto``:
        PARDISO where installed.
    """

    def __init__(self, A: sp.csr_matrix, face: np.ndarray, backend: str = "auto"):
        n = A.shape[0]
        self.face = np.asarray(face, np.int64)
        # symmetric Jacobi scaling: Â = D A D, A⁻¹ = D Â⁻¹ D (conductances span many decades)
        d = 1.0 / np.sqrt(A.diagonal())
        self.d = d
        As = sp.csr_matrix(sp.diags(d) @ A @ sp.diags(d))
        self.backend = backend
        if backend == "auto":
            self.backend = "pardiso" if Pardiso.library() is not None else "superlu"
        if self.backend == "pardiso":
            self.pardiso = Pardiso(As, self.face)
            S = self.pardiso.schur
        elif self.backend == "superlu":
            from scipy.sparse.linalg import splu
            inner = np.ones(n, bool)
            inner[self.face] = False
            self.inner = np.nonzero(inner)[0]
            A_II = As[self.inner][:, self.inner].tocsc()
            self.A_FI = As[self.face][:, self.inner]
            self.lu = splu(A_II) if self.inner.size else None
            S = As[self.face][:, self.face].toarray()
            if self.inner.size:
                S = S - self.A_FI @ self.lu.solve(self.A_FI.T.toarray())
        else:
            raise InputError("unknown direct solver backend", field="backend",
                             expected="auto, pardiso or superlu", found=backend)
        from scipy.linalg import cho_factor, cho_solve
        S = 0.5 * (S + S.T)
        self.cho = cho_factor(S, lower=True)
        self.cho_solve = cho_solve
        self.n = n

    def inverse_block(self) -> np.ndarray:
        """The face block of the inverse.

        Returns
        -------
        numpy.ndarray, (len(face), len(face))
            (A⁻¹)_FF (dense, V per A).
        """
        inv = self.cho_solve(self.cho, np.eye(len(self.face)))
        df = self.d[self.face]
        return 0.5 * (inv + inv.T) * df[:, None] * df[None, :]

    def solve_face(self, B: np.ndarray) -> np.ndarray:
        """Face rows of the solutions for several right-hand sides.

        Parameters
        ----------
        B : numpy.ndarray, (n, k)

        Returns
        -------
        numpy.ndarray, (len(face), k)
            (A⁻¹ B)_F.
        """
        Bs = B * self.d[:, None]
        if self.backend == "pardiso":
            Y = self.pardiso.forward(Bs)
            yF = Y[self.face]
        else:
            yF = Bs[self.face]
            if self.inner.size:
                yF = yF - self.A_FI @ self.lu.solve(np.ascontiguousarray(Bs[self.inner]))
        return self.cho_solve(self.cho, yF) * self.d[self.face][:, None]

    def release(self) -> None:
        """Free the factorisation (PARDISO's memory).

        Returns
        -------
        None
        """
        if self.backend == "pardiso":
            self.pardiso.release()


def direct_solve(A: sp.csr_matrix, B: np.ndarray) -> np.ndarray:
    """A⁻¹ B by one MKL PARDISO factorisation (Jacobi-scaled; forward, 1 × 1 Schur, backward).

    Parameters
    ----------
    A : scipy.sparse.csr_matrix
        Symmetric positive definite matrix.
    B : numpy.ndarray, (n, k)

    Returns
    -------
    numpy.ndarray, (n, k)
    """
    n = A.shape[0]
    system = SchurSystem(A, np.arange(1), "pardiso")
    d = system.d
    Y = system.pardiso.forward(B * d[:, None])
    Y[:1] = system.cho_solve(system.cho, Y[:1])
    X = np.zeros_like(Y, order="F")
    system.pardiso.call(333, np.asfortranarray(Y), X, nrhs=Y.shape[1])
    system.release()
    return X[:n] * d[:, None]
