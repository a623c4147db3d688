"""Finite-N one-pass SGD of the teacher-student committee machine (numpy, seeds vectorised).

Inputs xi ~ N(0, Sigma) with Sigma diagonal (the eigenbasis; teacher and student draws are
rotation invariant, so this loses nothing for the expected initial state).  Group k holds
round(rho_k N) coordinates.  Records the overlaps per eigenvalue group at each requested alpha.
"""
from dataclasses import dataclass

import numpy as np
from scipy.special import erf as _erf

from .config import output_weight
from .errors import ExactdynError
from .gaussian import Erf, Polynomial

MAX_STEPS = 50_000_000


def numeric_activation(activation):
    """(g, g') as numpy functions."""
    if isinstance(activation, Erf):
        return (lambda x: _erf(x / np.sqrt(2)), lambda x: np.sqrt(2 / np.pi) * np.exp(-x * x / 2))
    if isinstance(activation, Polynomial):
        coeffs = np.array([float(c) for c in activation.coeffs])
        dcoeffs = np.polynomial.polynomial.polyder(coeffs)
        return (lambda x: np.polynomial.polynomial.polyval(x, coeffs),
                lambda x: np.polynomial.polynomial.polyval(x, dcoeffs))
    raise ExactdynError(f"no numeric form for activation {activation!r}")


@dataclass(frozen=True)
class Simulation:
    """Overlaps per group: r[a, s, k] (K x M), q[a, s, k] (K x K), t[s, k] (M x M); a indexes alpha,
    s the seed, k the eigenvalue group."""

    alpha: tuple
    N: int
    seeds: tuple
    eigenvalues: tuple
    fractions: tuple
    r: np.ndarray
    q: np.ndarray
    t: np.ndarray


def group_sizes(fractions, N):
    sizes = [f * N for f in fractions]
    rounded = [int(round(s)) for s in sizes]
    if any(abs(s - r) > 1e-9 for s, r in zip(sizes, rounded)) or min(rounded) < 1:
        raise ExactdynError(f"N = {N} does not split into the eigenvalue groups (fractions x N must be whole)")
    return rounded


def simulate(structure, eigenvalues, fractions, eta, alpha, *, N, seeds, sigma_J=0.0, init_seed=None,
             progress=False):
    """One-pass SGD for each seed; `structure` gives activation, widths, output weights and loss.

    Each seed draws its own teacher and student, unless `init_seed` is given: then every seed
    starts from the one draw of `init_seed` (same initial overlaps) and only the data differ."""
    K, M = structure.K, structure.M
    if isinstance(N, bool) or not isinstance(N, int) or N < 2:
        raise ExactdynError(f"N must be a whole number >= 2, got {N!r}")
    if not np.isfinite(float(eta)) or float(eta) <= 0:
        raise ExactdynError(f"the learning rate eta must be positive, got {eta}")
    seeds = tuple(seeds)
    if not seeds:
        raise ExactdynError("give at least one seed")
    alpha = tuple(float(a) for a in alpha)
    if any(not np.isfinite(a) or a < 0 for a in alpha) or list(alpha) != sorted(alpha):
        raise ExactdynError("alpha must be finite, >= 0 and increasing")
    steps = [int(round(a * N)) for a in alpha]
    if steps[-1] > MAX_STEPS:
        raise ExactdynError(f"alpha = {alpha[-1]} at N = {N} is more than {MAX_STEPS} SGD steps")
    sizes = group_sizes(fractions, N)
    diag = np.repeat(np.asarray(eigenvalues, float), sizes)
    groups = np.repeat(np.arange(len(sizes)), sizes)
    g, dg = numeric_activation(structure.activation)
    v = float(output_weight(structure.output_weights, K))
    w = float(output_weight(structure.teacher_output_weights, M))
    c = float(structure.loss_factor)
    S = len(seeds)
    rngs = [np.random.default_rng(s if init_seed is None else init_seed) for s in seeds]
    B = np.stack([r.normal(size=(M, N)) for r in rngs])
    J = np.stack([sigma_J * r.normal(size=(K, N)) for r in rngs])
    data_rng = [np.random.default_rng([s, 1]) for s in seeds]
    sqrt_diag, scale, inv_sqrt_n = np.sqrt(diag), eta / np.sqrt(N), 1 / np.sqrt(N)

    def overlaps():
        onehot = np.eye(len(sizes))[groups]  # N x L
        r = np.einsum("skn,smn,nl->slkm", J, B, onehot) / N
        q = np.einsum("skn,sjn,nl->slkj", J, J, onehot) / N
        return r, q

    t = np.einsum("smn,spn,nl->slmp", B, B, np.eye(len(sizes))[groups]) / N
    rs, qs = [], []
    done = 0
    inputs = np.empty((S, 1024, N))
    bar = _progress(steps[-1], progress)
    for stop in steps:
        while done < stop:
            chunk = min(stop - done, 1024)
            for buf, rg in zip(inputs, data_rng):
                rg.standard_normal(out=buf[:chunk])
                buf[:chunk] *= sqrt_diag
            xis = inputs[:, :chunk]
            # teacher outputs for the whole chunk at once; the student's need the current J
            zetas = w * g(np.matmul(xis, np.swapaxes(B, 1, 2)) * inv_sqrt_n).sum(2)  # S x chunk
            for step in range(chunk):
                xi, zeta = xis[:, step], zetas[:, step]
                x = np.matmul(J, xi[:, :, None])[:, :, 0] * inv_sqrt_n
                delta = 2 * c * v * dg(x) * (zeta - v * g(x).sum(1))[:, None]
                J += scale * delta[:, :, None] * xi[:, None, :]
            done += chunk
            bar.update(chunk)
        r, q = overlaps()
        rs.append(r)
        qs.append(q)
    bar.close()
    return Simulation(alpha, N, seeds, tuple(eigenvalues), tuple(fractions), np.array(rs), np.array(qs), t)


def _progress(total, enabled):
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, unit="step", desc="SGD", leave=False)
