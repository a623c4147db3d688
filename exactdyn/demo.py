"""`exactdyn demo`: derive, print, solve exactly, compare with finite-N SGD, save a plot."""
from fractions import Fraction

import numpy as np

from .errors import ExactdynError
from .io.plotting import plot_curves
from .problem import InitialState, Problem
from .simulate.sgd import simulate_curve
from .solve import solve
from .spectrum import power_law
from .symbolic.linear import derive_linear

L, ETA, SIGMA_J = 8, "0.5", "0.5"
ALPHA = ("0", "0.25", "0.5", "1", "2", "4", "8")


def _equations(out):
    h = derive_linear(L)
    out.write("derived error hierarchy dD/dalpha = A D (orders 1..L, closed by Cayley-Hamilton):\n")
    for l in (0, 1, L - 1):
        rhs = sum(h.matrix[l, j] * h.D[j] for j in range(L))
        out.write(f"  dD{l + 1}/dalpha = {rhs}\n")
    out.write(f"  (every equation: exactdyn derive --activation linear --K 1 --M 1 --L {L} --format latex)\n\n")


def run_demo(out, *, N=1024, seeds=6, plot="exactdyn-demo.png", progress=False):
    """The main job on built-in defaults: a linear network on a power law (L = 8, beta = 1)."""
    if seeds < 2:
        raise ExactdynError("the demo needs at least 2 seeds for an error bar")
    if N % L:
        raise ExactdynError(f"--N must be a multiple of L = {L}")
    problem = Problem("linear", 1, 1, power_law(L, 1), ETA)
    out.write(f"exactdyn demo: linear network, power-law spectrum L = {L}, beta = 1, eta = {ETA}\n\n")
    _equations(out)
    sgd = simulate_curve(problem, [float(a) for a in ALPHA], N=N, seeds=range(seeds), sigma_J=SIGMA_J,
                         progress=progress)
    sim = sgd.simulation
    # eps_g is linear in the initial overlaps: start the exact curve from the seeds' mean state
    start = InitialState(sim.r[0].mean(0).tolist(), sim.q[0].mean(0).tolist(), sim.t.mean(0).tolist())
    exact = solve(problem, start, ALPHA, digits=20)
    out.write("exact curve started from the simulation's mean initial overlaps per eigenvalue group\n")
    out.write(f"{'alpha':>6}  {'exact eps_g (20 certified digits)':<34} SGD N={N}, {seeds} seeds\n")
    for a, e, m, s in zip(ALPHA, exact.decimals(), sgd.mean, sgd.stderr):
        out.write(f"{a:>6}  {e:<34} {m:.5f} +- {s:.5f}\n")
    out.write(f"stability limit of eta: {float(exact.stats['stability_limit'].mid()):.6g}\n")
    curve_alpha = [Fraction(str(x)) for x in np.round(np.logspace(-1.5, 1.2, 50), 4)]
    curve = solve(problem, start, curve_alpha, digits=10)
    plot_curves([("exact", curve.alpha, curve.floats())], plot,
                bands=[(f"SGD, N={N}", sim.alpha, sgd.mean, sgd.stderr)],
                title=f"linear network, power law L={L}, beta=1, eta={ETA}")
    out.write(f"plot saved to {plot}\n")
