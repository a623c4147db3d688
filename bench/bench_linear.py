"""Linear networks: cost of the certified 30-digit curve (100 alpha points) against a float64
dense-eigh baseline of the same dynamics, measured in the same run.

Run: python bench/bench_linear.py [L ...]   (default 500 1000 2000 4000 8000 16000)
Every L runs in a fresh subprocess (its own peak memory); the numba kernels are cached on disk,
and a warm-up solve at L = 8 reports the one-off load/compile time.  Columns: the float64 eigh
baseline (up to --eigh-max), the certified compiled route, their ratio, the Python ball route
(up to --ball-max) and the moment route (up to --moment-max).  Growth exponents are least-squares
slopes of log time against log L.  --sample L0 times L = L0 (e.g. 100000) on --sample-roots roots
of the O(L^2) stages only and extrapolates them (x L / roots), plus the full O(L) stages and alpha
sums, and reports the peak memory of that run.
"""
import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

ALPHA = [f"{x:.6g}" for x in np.logspace(0, 4, 100)]
ETA = "0.5"


def baseline(L):
    """float64: the same dynamics as a dense L x L matrix, diagonalised with eigh."""
    lam = L * np.arange(1, L + 1, dtype=float) ** -2.0
    lam = lam / lam.mean()
    rho = np.full(L, 1.0 / L)
    d0 = rho.copy()
    eta = float(ETA)
    # dd/dalpha = (-2 eta diag(lam) + eta^2 (lam rho) lam^T) d, symmetrised by diag(sqrt(rho)) scaling
    s = np.sqrt(rho)
    A = -2 * eta * np.diag(lam) + eta ** 2 * np.outer(lam * s, lam * s)
    w, V = np.linalg.eigh(A)
    y0 = V.T @ (d0 / s)
    return [0.5 * (lam * s) @ (V @ (np.exp(w * float(a)) * y0)) for a in ALPHA]


def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one(L, what):
    """One measurement in this process; prints a JSON line."""
    from exactdyn import power_law
    from exactdyn.numeric.linear import solve_linear

    t = time.perf_counter()
    solve_linear(power_law(8, 1), ETA, [1], digits=30)
    out = {"L": L, "what": what, "warmup": time.perf_counter() - t}
    if what == "eigh":
        t, c = time.perf_counter(), time.process_time()
        out["values"] = baseline(L)
    else:
        spec = power_law(L, 1)
        kw = {"compiled": False} if what == "ball" else {"route": "moment"} if what == "moment" else {}
        t, c = time.perf_counter(), time.process_time()
        sol = solve_linear(spec, ETA, ALPHA, digits=30, **kw)
        out["values"] = [float(e.mid()) for e in sol.eps_g]
        out["route"], out["bits"] = sol.route, sol.bits
    out["seconds"], out["cpu"], out["peak_mb"] = time.perf_counter() - t, time.process_time() - c, _peak_mb()
    print(json.dumps(out))


def sample(L, roots):
    """L too large to finish here: the O(L^2) stages on `roots` roots, extrapolated; the rest in full."""
    import flint
    from exactdyn import power_law
    from exactdyn.numbers import working_precision
    from exactdyn.numeric import linear_kernel as kernel
    from exactdyn.numeric.linear import FINE_BITS, _eigenvalue_balls

    out = {"L": L, "what": "sample", "roots": roots}
    t = time.perf_counter()
    spec = power_law(L, 1)
    out["build"] = time.perf_counter() - t
    bits = 128
    t = time.perf_counter()
    with working_precision(bits + FINE_BITS):
        fine = _eigenvalue_balls(spec)
    with working_precision(bits):
        lam = [x + 0 for x in fine]
        eta = flint.arb(flint.fmpq(1, 2))
        a = [eta / 2 * flint.arb(w) * x * x for w, x in zip(spec.weights, lam)]
        b = [x * flint.arb(w) for w, x in zip(spec.weights, lam)]
        bottom = float((lam[-1] - sum(a, flint.arb(0)) - 1).mid()) - 1
        lam_hi, lam_lo = kernel.split(lam)
        a_hi, a_lo = kernel.split(a)
        out["setup"] = time.perf_counter() - t
        t = time.perf_counter()
        mu_hi, mu_lo = kernel.approximate_roots(lam_hi, lam_lo, a_hi, a_lo, bottom, roots)
        out["float_roots_per_root"] = (time.perf_counter() - t) / roots
        t = time.perf_counter()
        with working_precision(bits + FINE_BITS):
            centers = [(x - float(h) - float(l)).mid() for x, h, l in zip(fine, mu_hi, mu_lo)]
        sums = kernel.root_sums(fine, a, b, list(range(roots)), centers, bits, bits + FINE_BITS, 64)
        out["ball_sums_per_root"] = (time.perf_counter() - t) / roots
        out["finite"] = all(x.is_finite() for row in sums for x in row)
        rates = [-2 * eta * lam[j % roots] for j in range(L)]  # stand-ins of the right size for the alpha sums
        coefs = [flint.arb(1) / L] * L
        t = time.perf_counter()
        kernel.alpha_sums(rates, coefs, [flint.arb(x) for x in ALPHA], bits)
        out["alpha_sums"] = time.perf_counter() - t
    out["estimated_seconds"] = (out["build"] + out["setup"] + L * (out["float_roots_per_root"] + out["ball_sums_per_root"])
                                + out["alpha_sums"])
    out["peak_mb"] = _peak_mb()
    print(json.dumps(out))


def run(L, what):
    proc = subprocess.run([sys.executable, __file__, "--one", str(L), what], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def slope(rows, key):
    pts = [(r["L"], r[key]) for r in rows if r.get(key)]
    if len(pts) < 2:
        return float("nan")
    return np.polyfit(np.log([p[0] for p in pts]), np.log([p[1] for p in pts]), 1)[0]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("L", nargs="*", type=int, default=[500, 1000, 2000, 4000, 8000, 16000])
    parser.add_argument("--eigh-max", type=int, default=8000)
    parser.add_argument("--ball-max", type=int, default=1000)
    parser.add_argument("--moment-max", type=int, default=500)
    parser.add_argument("--sample", type=int, default=0)
    parser.add_argument("--sample-roots", type=int, default=200)
    parser.add_argument("--one", nargs=2)
    args = parser.parse_args()
    if args.one:
        return one(int(args.one[0]), args.one[1])
    if args.sample:
        return sample(args.sample, args.sample_roots)
    print(f"30 certified digits, {len(ALPHA)} alpha points in [1, 1e4], eta = {ETA}, power law beta = 1")
    print(f"{'L':>6} {'eigh s':>8} {'cpu s':>7} {'compiled s':>11} {'cpu s':>7} {'ratio':>6} {'peak MB':>8} {'ball s':>8} "
          f"{'ball/compiled':>13} {'moment s':>9} {'float64 rel err':>15}")
    rows = []
    for L in args.L:
        row = {"L": L}
        fast = run(L, "compiled")
        row["compiled"], row["cpu"], row["peak"] = fast["seconds"], fast["cpu"], fast["peak_mb"]
        err = ""
        if L <= args.eigh_max:
            base = run(L, "eigh")
            row["eigh"], row["eigh_cpu"] = base["seconds"], base["cpu"]
            err = f"{max(abs(x / y - 1) for x, y in zip(base['values'], fast['values'])):.1e}"
        if L <= args.ball_max:
            row["ball"] = run(L, "ball")["seconds"]
        if L <= args.moment_max:
            row["moment"] = run(L, "moment")["seconds"]
        rows.append(row)
        fmt = lambda k, w, p=2: f"{row[k]:>{w}.{p}f}" if k in row else f"{'-':>{w}}"
        ratio = f"{row['compiled'] / row['eigh']:>6.2f}" if "eigh" in row else f"{'-':>6}"
        speed = f"{row['ball'] / row['compiled']:>13.1f}" if "ball" in row else f"{'-':>13}"
        print(f"{L:>6} {fmt('eigh', 8)} {fmt('eigh_cpu', 7)} {fmt('compiled', 11)} {fmt('cpu', 7)} {ratio} {fmt('peak', 8, 0)} "
              f"{fmt('ball', 8)} {speed} {fmt('moment', 9)} {err:>15}   [{fast['route']}, {fast['bits']} bits, "
              f"warm-up {fast['warmup']:.1f} s]", flush=True)
    print(f"growth exponents: compiled {slope(rows, 'compiled'):.2f} (cpu {slope(rows, 'cpu'):.2f}), "
          f"float64 eigh {slope(rows, 'eigh'):.2f} (cpu {slope(rows, 'eigh_cpu'):.2f}), ball route {slope(rows, 'ball'):.2f}")


if __name__ == "__main__":
    main()
