"""Erf committee machine: one float64 ODE trajectory against one finite-N SGD run to the same alpha.

K = M = 2, L = 64 (beta = 1), N = 8192, eta = 0.5, sigma_J = 0.5, alpha = 0..ALPHA.  Both from the
same initial draw, timed in the same run; prints the ratio.  Run: python bench/bench_erf.py [ALPHA]
"""
import sys
import time

import numpy as np

from exactdyn import Erf, Structure, power_law
from exactdyn.symbolic.cache import derive
from exactdyn.numeric.committee import finite_n_initial, integrate
from exactdyn.simulate.sgd import simulate

L, N, ETA, SIGMA_J = 64, 8192, 0.5, 0.5


def main(alpha_end=2.0):
    structure = Structure(Erf(), 2, 2, L)
    lam = [float(x) for x in power_law(L, 1).eigenvalues]
    frac = [1 / L] * L
    alpha = list(np.linspace(0, alpha_end, 5))
    t = time.perf_counter()
    derive(structure, "mode")
    t_derive = time.perf_counter() - t
    t = time.perf_counter()
    ode = integrate(structure, finite_n_initial(lam, frac, 2, 2, N, 0, SIGMA_J), ETA, alpha, verify=False)
    t_ode = time.perf_counter() - t
    t = time.perf_counter()
    simulate(structure, lam, frac, ETA, alpha, N=N, seeds=[0], sigma_J=SIGMA_J, init_seed=0)
    t_sgd = time.perf_counter() - t
    print(f"derivation (first run fills the cache): {t_derive:.2f} s")
    print(f"ODE trajectory to alpha = {alpha_end}: {t_ode:.2f} s (compile + integrate); eps_g = {ode.eps_g[-1]:.6g}")
    print(f"SGD, N = {N}, one seed, {int(alpha_end * N)} steps: {t_sgd:.2f} s")
    print(f"ratio SGD / ODE: {t_sgd / t_ode:.2f}")


if __name__ == "__main__":
    main(*(float(a) for a in sys.argv[1:]))
