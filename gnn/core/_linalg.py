"""Dense linear algebra the linear models share (EASE^R on users and on playlists)."""

from __future__ import annotations

import numpy as np
import torch

from spotify_engine.errors import FitFailed


def spd_inverse(a: np.ndarray, *, what: str) -> np.ndarray:
    """The inverse of the symmetric positive definite ``a`` (both triangles), in ``a``'s dtype.

    A Cholesky factor and its inverse through torch's LAPACK (MKL on x86), on torch's CPU
    threads. Not scipy's: its bundled OpenBLAS ``spotrf`` crashes the process (SIGSEGV) from
    about 25,000 x 25,000 on (measured at 27,000 and 30,000 on 2026-12-07), the size EASE^R
    reaches at 200,000 songs (issue 15). ``a`` may be used as scratch; do not read it after.
    Raises :class:`FitFailed` (naming ``what``) when ``a`` is not positive definite in its dtype.

    Shapes: a float [m, m] -> float [m, m]
    """
    t = torch.from_numpy(a)
    factor, info = torch.linalg.cholesky_ex(t)
    del t
    if int(info) != 0:
        raise FitFailed(f"{what} is not positive definite (Cholesky failed at pivot {int(info)})")
    inv = torch.cholesky_inverse(factor)
    del factor
    # LAPACK's result is column-major; the matrix is symmetric, so its transpose is the same
    # matrix in row-major order, without a copy. A column-major B made every x @ B copy all of
    # it first (a scoring batch, each user explained: 1.4 GB a time at 19,000 songs).
    out = inv.numpy()
    out = np.ascontiguousarray(out.T if out.flags.f_contiguous else out)
    if not np.isfinite(np.diagonal(out)).all():
        raise FitFailed(f"{what} could not be inverted (the inverse overflows)")
    return out
