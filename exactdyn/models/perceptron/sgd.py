"""Finite-N one-pass SGD of the perceptron, and its comparison with the ODE.

Sigma is diagonal (its eigenbasis: the draws of B and J are rotation invariant), group k holds
rho_k N coordinates.  Inputs come from numpy's seeded generators in blocks; the sequential
update runs in a numba kernel.  Each seed draws its own B ~ N(0, I) and J ~ N(0, sigma_J^2 I).
"""
from dataclasses import dataclass
import math

import numba
import numpy as np

from ...errors import ExactdynError
from ...simulate.sgd import group_sizes
from ...numbers import to_fraction
from .dynamics import State, alpha_grid, eps_g, global_overlaps, solve

MAX_STEPS = 20_000_000
MAX_SEEDS = 1000
MAX_N = 1_000_000
MAX_WORK = 2e10  # input numbers drawn (steps x N x seeds): a few minutes
_CODES = {"hebbian": 0, "perceptron": 1, "adatron": 2, "logistic": 3}
_BLOCK = 512


@numba.njit(cache=True)
def _run(J, B, xis, flips, code, step_size, inv_sqrt_n):
    for n in range(xis.shape[0]):
        xi = xis[n]
        x = 0.0
        y = 0.0
        for i in range(xi.shape[0]):
            x += J[i] * xi[i]
            y += B[i] * xi[i]
        x *= inv_sqrt_n
        s = 1.0 if y > 0 else -1.0
        if flips[n]:
            s = -s
        if code == 0:
            F = s
        elif code == 1:
            F = s if s * x < 0 else 0.0
        elif code == 2:
            F = -x if s * x < 0 else 0.0
        else:
            z = s * x  # F = s sigmoid(-z), written to avoid overflow
            F = s / (1.0 + math.exp(z)) if z < 0 else s * math.exp(-z) / (1.0 + math.exp(-z))
        a = step_size * F
        for i in range(xi.shape[0]):
            J[i] += a * xi[i]


@dataclass(frozen=True)
class Simulation:
    """Per-group overlaps r[a, s, k], q[a, s, k] and t[s, k] at alpha[a] for seed s."""

    alpha: tuple
    N: int
    seeds: tuple
    sigma_J: float
    r: np.ndarray
    q: np.ndarray
    t: np.ndarray

    def series(self, lam):
        """eps_g[a, s] and norm[a, s] = |J|^2/N of every run."""
        Q, R, T = global_overlaps(np.asarray(lam), self.r, self.q, self.t[None])
        return eps_g(Q, R, T), self.q.sum(-1)


def simulate(model, alpha, *, N, seeds, sigma_J=1.0):
    """One-pass SGD for each seed, overlaps recorded at each alpha (alpha N steps, rounded)."""
    if isinstance(N, bool) or not isinstance(N, int) or not 2 <= N <= MAX_N:
        raise ExactdynError(f"N must be a whole number from 2 to {MAX_N}, got {N!r}")
    seeds = tuple(seeds)
    if not seeds or len(seeds) > MAX_SEEDS or any(isinstance(s, bool) or not isinstance(s, int) or s < 0
                                                  for s in seeds):
        raise ExactdynError(f"give 1 to {MAX_SEEDS} seeds, whole numbers >= 0")
    alpha = tuple(alpha_grid(alpha))
    steps = [int(round(a * N)) for a in alpha]
    if steps[-1] * len(seeds) > MAX_STEPS or steps[-1] * len(seeds) * N > MAX_WORK:
        raise ExactdynError(f"{steps[-1]} steps x {len(seeds)} seeds at N = {N} is too long a run (at most "
                            f"{MAX_STEPS} steps and {MAX_WORK:.0e} input numbers)")
    sigma = float(to_fraction(sigma_J, "sigma_J"))
    if sigma < 0:
        raise ExactdynError("sigma_J must be >= 0")
    sizes = group_sizes(model.fractions, N)
    sqrt_diag = np.repeat(np.sqrt(np.asarray(model.eigenvalues)), sizes)
    onehot = np.eye(len(sizes))[np.repeat(np.arange(len(sizes)), sizes)]
    code, p_flip = _CODES[model.rule], float(model.p_flip)
    step_size, inv = float(model.eta) / math.sqrt(N), 1 / math.sqrt(N)
    block = max(1, min(_BLOCK, (1 << 22) // N))  # at most 32 MB of inputs at once
    rs, qs, ts = [], [], []
    for seed in seeds:
        draw = np.random.default_rng(seed)
        B, J = draw.standard_normal(N), sigma * draw.standard_normal(N)
        data = np.random.default_rng([seed, 1])
        ts.append((B * B) @ onehot / N)
        r_seed, q_seed, done = [], [], 0
        for stop in steps:
            while done < stop:
                chunk = min(stop - done, block)
                xis = data.standard_normal((chunk, N)) * sqrt_diag
                flips = data.random(chunk) < p_flip
                _run(J, B, xis, flips, code, step_size, inv)
                done += chunk
            if not np.all(np.isfinite(J)) or np.abs(J).max() > 1e100:  # J.J would overflow
                raise ExactdynError("the SGD run diverged (eta too large?)")
            r_seed.append((J * B) @ onehot / N)
            q_seed.append((J * J) @ onehot / N)
        rs.append(r_seed)
        qs.append(q_seed)
    swap = lambda a: np.swapaxes(np.asarray(a), 0, 1)
    return Simulation(alpha, N, seeds, sigma, swap(rs), swap(qs), np.asarray(ts))


@dataclass(frozen=True)
class Comparison:
    """ODE against the mean over seeds: per alpha, the deviation in standard errors of the mean."""

    alpha: np.ndarray
    ode_eps_g: np.ndarray
    sgd_eps_g: np.ndarray
    eps_g_stderr: np.ndarray
    ode_norm: np.ndarray
    sgd_norm: np.ndarray
    norm_stderr: np.ndarray
    threshold: float

    @property
    def z(self):
        """Largest |ODE - mean| / stderr over alpha, for eps_g and the norm (alpha > 0 only)."""
        keep = self.alpha > 0
        return (float(np.max(np.abs(self.ode_eps_g - self.sgd_eps_g)[keep] / self.eps_g_stderr[keep])),
                float(np.max(np.abs(self.ode_norm - self.sgd_norm)[keep] / self.norm_stderr[keep])))

    @property
    def consistent(self):
        return max(self.z) <= self.threshold


def compare(model, sim, *, threshold=4.0, **ode_options):
    """The ODE from the expected initial state against the simulation's mean +- standard error;
    the seeds' O(1/sqrt N) scatter of the initial draw is part of that error."""
    if len(sim.seeds) < 2:
        raise ExactdynError("a comparison needs at least 2 seeds (for the standard error)")
    eps, norm = sim.series(model.eigenvalues)
    n = len(sim.seeds)
    return compare_summary(model, sim.sigma_J, sim.alpha, eps.mean(1), eps.std(1, ddof=1) / math.sqrt(n),
                           norm.mean(1), norm.std(1, ddof=1) / math.sqrt(n), threshold=threshold, **ode_options)


def compare_summary(model, sigma_J, alpha, eps_mean, eps_stderr, norm_mean, norm_stderr, *, threshold=4.0,
                    **ode_options):
    """As compare, from the means and standard errors over seeds at each alpha."""
    if not (math.isfinite(threshold) and threshold > 0):
        raise ExactdynError(f"the threshold must be a positive number, got {threshold}")
    alpha = np.asarray(alpha, float)
    series = [np.asarray(v, float) for v in (eps_mean, eps_stderr, norm_mean, norm_stderr)]
    if any(v.shape != alpha.shape for v in series) or not all(np.all(np.isfinite(v)) for v in series):
        raise ExactdynError("every series needs one finite value per alpha")
    if np.any(series[1][alpha > 0] <= 0) or np.any(series[3][alpha > 0] <= 0):
        raise ExactdynError("the standard errors must be positive")
    positive = alpha > 0
    state0 = State.expected(model, sigma_J)
    Q0, R0, T0 = global_overlaps(np.asarray(model.eigenvalues), state0.r, state0.q, state0.t)
    traj = solve(model, state0, alpha[positive], verify=False, **ode_options)
    start = int((~positive).sum())
    full = lambda v, at0: np.concatenate([[at0] * start, v])
    return Comparison(alpha, full(traj.eps_g, float(eps_g(Q0, R0, T0))), series[0], series[1],
                      full(traj.norm, float(state0.q.sum())), series[2], series[3], threshold)


def compare_deterministic(model, sigma_J, alpha, eps, norm, *, rtol=1e-6):
    """Another code's ODE trajectory (no seeds) against exactdyn's from the expected initial state:
    (largest relative deviation of eps_g, of the norm, consistent).  exactdyn's verified digits must
    cover rtol, else the request is refused."""
    if not (math.isfinite(rtol) and 0 < rtol < 1):
        raise ExactdynError(f"rtol must lie in (0, 1), got {rtol}")
    alpha, eps, norm = (np.asarray(v, float) for v in (alpha, eps, norm))
    if eps.shape != alpha.shape or norm.shape != alpha.shape or not np.all(np.isfinite(eps) & np.isfinite(norm)):
        raise ExactdynError("every series needs one finite value per alpha")
    traj = solve(model, State.expected(model, sigma_J), alpha)
    if 10.0 ** -traj.digits.min() > rtol / 10:
        raise ExactdynError(f"exactdyn vouches for {traj.digits.min()} digits on this trajectory: ask for "
                            f"rtol >= {10.0 ** (1 - traj.digits.min()):g}")
    dev = lambda ours, theirs: float(np.max(np.abs(theirs - ours) / np.abs(ours)))
    d_eps, d_norm = dev(traj.eps_g, eps), dev(traj.norm, norm)
    return d_eps, d_norm, max(d_eps, d_norm) <= rtol
