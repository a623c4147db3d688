"""The long SGD runs behind notebooks/erf_sgd.ipynb, written as small CSVs in notebooks/data/.

Run: python bench/sgd_plateau_runs.py [ode] [L ...]   (default 4 16 64)

erf committee machine, K = M = 2, output weights 1, power-law spectrum with beta = 1 and L distinct
eigenvalues, eta = 1/2, N = 4096, every seed from the one weight draw of seed INIT_SEED (B ~ N(0, I),
J ~ N(0, sigma_J^2 I), sigma_J = 1/100), so the mean over the data seeds is what the ODE from that
draw's overlaps predicts.  One-pass SGD through the exact per-group overlap chain
(exactdyn.simulate.chain) to alpha = 2000 (8.2 million steps).  Rows of erf_sgd_L<L>.csv:
seed, alpha, eps_g (the derived eps_g of the simulated overlaps).  With `ode`: the ODE (exactdyn.solve,
float64 engine) from the same draw's overlaps on the same alpha grid, rows of erf_ode_L<L>.csv: alpha,
eps_g, digits (verified by a second run at a tighter tolerance).
"""
import csv
import sys
import time
from pathlib import Path

import numpy as np

from exactdyn import power_law
from exactdyn.problem import Problem
from exactdyn.simulate.sgd import simulate_curve

DATA = Path(__file__).resolve().parents[1] / "notebooks" / "data"
N, ETA, SIGMA_J, INIT_SEED = 4096, "1/2", "1/100", 1
SEEDS = {4: 8, 16: 8, 64: 4}
ALPHA = sorted(set(np.round(np.linspace(0, 400, 41), 6).tolist() + np.round(np.geomspace(1, 2000, 34), 3).tolist()))


def problem(L):
    return Problem("erf", 2, 2, power_law(L, 1), ETA)


def run(L, seeds, alpha=ALPHA):
    """eps_g[a, s] of the chain for `seeds`, with this file's settings."""
    return simulate_curve(problem(L), alpha, N=N, seeds=seeds, sigma_J=SIGMA_J, init_seed=INIT_SEED,
                          method="chain").eps_g


def ode(L, alpha=ALPHA):
    from exactdyn import InitialState, solve

    p = problem(L)
    return solve(p, InitialState.draw(p, N, seed=INIT_SEED, sigma_J=SIGMA_J), alpha)


def main():
    args = sys.argv[1:]
    with_ode = bool(args) and args[0] == "ode"
    Ls = [int(x) for x in args[with_ode:]] or [4, 16, 64]
    DATA.mkdir(exist_ok=True)
    for L in Ls:
        if with_ode:
            sol = ode(L)
            assert sol.ok
            with open(DATA / f"erf_ode_L{L}.csv", "w", newline="") as f:
                out = csv.writer(f)
                out.writerow(["alpha", "eps_g", "digits"])
                out.writerows([a, repr(float(e)), d] for a, e, d in zip(ALPHA, sol.floats(), sol.digits))
            print(f"L = {L}: ODE, fewest verified digits {min(sol.digits)}", flush=True)
            continue
        start = time.perf_counter()
        seeds = range(SEEDS.get(L, 6))
        eps = run(L, seeds)
        with open(DATA / f"erf_sgd_L{L}.csv", "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["seed", "alpha", "eps_g"])
            for s_index, s in enumerate(seeds):
                for a, e in zip(ALPHA, eps[:, s_index]):
                    out.writerow([s, a, repr(float(e))])
        print(f"L = {L}: {len(seeds)} seeds to alpha = {ALPHA[-1]} in {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
