"""A linear student trainable in Haar-random subspaces, as a Solution: the mean of the exact
per-draw curves (`linear.random_basis_curve`), each point with the digits the spread allows."""
import math

import mpmath

from ..errors import ExactdynError
from ..problem import Solution, Status
from .linear import random_basis_curve, random_subspace_limit

MAX_DIGITS = 8  # each draw is exact for its float64 eigenpairs


def spread_digits(mean, stderr):
    """Significant digits of `mean` that a standard error `stderr` leaves standing (1 to MAX_DIGITS)."""
    if not stderr:
        return MAX_DIGITS
    if mean == 0:
        return 1
    return max(1, min(MAX_DIGITS, int(math.floor(math.log10(abs(mean) / stderr))) + 1))


def random_subspace_solution(problem, fraction, alpha, *, N, draws, sigma_J=0):
    """eps_g(alpha) of the linear `problem` (K = M = 1) trainable in `fraction` of the N input
    dimensions, a Haar-random subspace per draw (seeds `draws`): the mean over draws."""
    if not (problem.is_linear and problem.K == problem.M == 1):
        raise ExactdynError("random subspaces are for the linear network with K = M = 1")
    draws = tuple(draws)
    curve = random_basis_curve(problem.spectrum, fraction, problem.eta, alpha, N=N, draws=draws, sigma_J=sigma_J)
    stderr = [s / math.sqrt(len(draws)) for s in curve.spread] if len(draws) > 1 else None
    digits = tuple(spread_digits(m, s) for m, s in zip(curve.eps_g, stderr or [0] * len(curve.eps_g)))
    limit = random_subspace_limit(problem.spectrum, fraction, sigma_J=sigma_J, digits=10)
    stats = {"digits_from": "digits the spread over draws allows", "random_subspace": str(fraction),
             "input_dimension": N, "trainable_dimension": curve.trainable, "draws": len(draws),
             "eps_g_stderr": [f"{s:.2g}" for s in stderr] if stderr else None,
             "eps_g_limit_per_draw": [f"{x:.8g}" for x in curve.limits],
             "eps_g_limit_N_infinity_small_eta": mpmath.nstr(limit, 10)}
    return Solution(curve.alpha, curve.eps_g, digits, False, Status.OK, "",
                    f"mean of exact curves over {len(draws)} Haar subspace(s)", 53, stats=stats)
