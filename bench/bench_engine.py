"""exactdyn's compiled engine (solve()) against the pre-engine paths, old and new in the same run.

Model of every case: erf committee machine K = M = 2, power-law spectrum beta = 1 with L distinct
eigenvalues, eta = 0.5, sigma_J = 0.5, InitialState.expected (seed 0).  Paths:

- new: ``exactdyn.solve`` end to end with a warm derivation cache: float64 = BDF on one compiled
  eigenvalue group with its exact sparse Jacobian (numeric/grouped.py), verified by a 10x looser
  run; digits = d: heyoka's Taylor method in MPFR, verified by a second run at 64 more bits.
- lsoda: the previous engine's float64 route, LSODA (dense finite-difference Jacobian) on the whole
  compiled rhs, the same verified pair (engine.integrate_float at rtol 1e-11 and 1e-12).
- old: bench/baseline.py, the pre-engine code: lambdified rhs + DOP853 at rtol 1e-9 checked at
  1e-11; mpmath Bulirsch-Stoer at high precision.
- euler: fixed-step explicit Euler at dt = 0.01 on the compiled rhs (what published ODE codes for
  these models use).

'true digits' count against an independent reference: scipy's Radau (implicit Runge-Kutta, another
method) on the same grouped equations at rtol 1e-13, itself checked at L = 4 against a 30-digit
Taylor run.  Expensive cases run under a time budget (SIGALRM) and print '> budget'.  Ratios come
from one run; wall-clock seconds, CPU seconds where a row is dominated by one process.

    python bench/bench_engine.py           # full run (~25 min on 2 busy cores); writes bench/results_engine.md
    python bench/bench_engine.py --quick   # L = 4, 16 only (~3 min); prints
"""
import argparse
from contextlib import contextmanager
import datetime
from fractions import Fraction
import math
import os
from pathlib import Path
import platform
import signal
import subprocess
import sys
import tempfile
import time

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
_CACHE = tempfile.TemporaryDirectory(prefix="exactdyn-bench-cache-")
os.environ["EXACTDYN_CACHE"] = _CACHE.name  # cold derivations: nothing cached from earlier runs

import heyoka as hy  # noqa: E402
import numpy as np  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

import baseline  # noqa: E402
from exactdyn import power_law  # noqa: E402
from exactdyn.numeric import engine, grouped  # noqa: E402
from exactdyn.numeric.certify import agreed_digits  # noqa: E402
from exactdyn.problem import InitialState, Problem, exact  # noqa: E402
from exactdyn.solve import _values, solve  # noqa: E402
from exactdyn.symbolic.cache import derive  # noqa: E402

ETA, SIGMA_J, BETA = "0.5", "0.5", 1
EULER_DT = 0.01


class OverBudget(BaseException):
    """From the SIGALRM handler (a BaseException, so that library code catching Exception lets it pass)."""


@contextmanager
def budget(seconds):
    def fire(signum, frame):
        raise OverBudget

    if not seconds:
        yield
        return
    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def timed(fn, limit, *args, **kwargs):
    """(result, wall s, cpu s) of fn(*args, **kwargs), or (None, inf, limit) past `limit` seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        with budget(limit):
            result = fn(*args, **kwargs)
    except OverBudget:
        return None, math.inf, limit
    return result, time.perf_counter() - wall, time.process_time() - cpu


def secs(x, limit=None):
    if x is None:
        return "-"
    if math.isinf(x):
        return f"> {limit:.0f} (budget)" if limit else "> budget"
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def log(*parts):
    print(*parts, flush=True, file=sys.stderr)


def grid(end):
    """0 and the 1-2-5 sequence up to `end`, as Fractions (solve() reads them exactly)."""
    out, decade = [Fraction(0)], Fraction(1, 10)
    while decade <= end:
        out += [m * decade for m in (1, 2, 5) if m * decade <= end]
        decade *= 10
    return out if out[-1] == end else out + [Fraction(end)]


_COLD = {}


class Case:
    """One L: problem, derivation (cold then warm), exact start values."""

    def __init__(self, L):
        self.L, self.p = L, Problem("erf", 2, 2, power_law(L, BETA), ETA)
        self.initial = InitialState.expected(self.p, SIGMA_J)
        if L not in _COLD:  # the first derivation of this L in the run (a fresh cache)
            _COLD[L] = timed(derive, None, self.p.structure, "mode")[1]
        self.derive_cold = _COLD[L]
        self.system, self.derive_warm, _ = timed(derive, None, self.p.structure, "mode")
        self.y0, self.params = _values(self.system, self.p, self.initial)
        lam = [float(exact(x)) for x in self.p.spectrum.eigenvalues]
        self.eta_lam1, self.ratio = float(self.p.eta) * lam[0], lam[0] / lam[-1]
        self.n = len(self.system.states)

    def float_initial(self):
        lam = [float(exact(x)) for x in self.p.spectrum.eigenvalues]
        frac = [float(exact(w)) for w in self.p.spectrum.weights]
        fl = lambda blocks: [[[float(x) for x in row] for row in mat] for mat in blocks]
        return lam, frac, fl(self.initial.r), fl(self.initial.q), fl(self.initial.t), self.L


def new_float(case, alphas):
    sol = solve(case.p, case.initial, alphas)
    return {"eps": sol.floats(), "digits": list(sol.digits), "nfev": sol.stats["rhs_evaluations"],
            "integration": sol.stats["seconds"]}


def lsoda_pair(case, alphas):
    compiled = engine.compile_system(case.system)
    runs = [engine.integrate_float(compiled, case.y0, case.params, alphas, rtol=r) for r in (1e-11, 1e-12)]
    return {"eps": list(runs[1].eps_g), "digits": [agreed_digits(a, b, 15) for a, b in zip(runs[0].eps_g, runs[1].eps_g)],
            "nfev": runs[1].steps}


def old_float(case, alphas):
    tr = baseline.integrate(case.p.structure, case.float_initial(), float(case.p.eta), alphas, system=case.system)
    return {"eps": list(tr.eps_g), "digits": [tr.verified_digits], "nfev": tr.nfev}


def _arrowhead(case):
    form = grouped.group_form(case.system)
    system = grouped._Arrowhead(form, case.params)
    start = np.array([engine.float_number(v) for v in case.y0])[form.states]
    return form, system, np.concatenate([start.ravel(), system.aggregates(start)])


def radau_reference(case, alphas):
    """eps_g by Radau IIA (order 5) on the grouped equations at rtol 1e-13: another integrator."""
    form, system, y = _arrowhead(case)
    ts = [float(a) for a in alphas]
    sol = solve_ivp(system.rhs, (0.0, ts[-1]), y, method="Radau", t_eval=ts, rtol=1e-13, atol=1e-15,
                    jac=system.jacobian)
    if sol.status != 0:
        raise RuntimeError(sol.message)
    pars = np.repeat(system.pars[:form.eps.nparams, :1], len(ts), axis=1)
    return form.eps(np.ascontiguousarray(sol.y[system.n:]), pars=pars)[0].tolist()


def euler(case, alphas):
    """Explicit Euler at dt = 0.01 on the whole compiled float64 rhs."""
    compiled = engine.compile_system(case.system)
    rhs = engine._float_cfunc(compiled, "rhs")
    pars = np.array(compiled.parameter_values(case.params, engine.float_number))[:rhs.nparams]
    y = np.array([engine.float_number(v) for v in case.y0])
    out, states, step = np.empty_like(y), [], 0
    for a in alphas:
        target = round(float(a) / EULER_DT)
        for _ in range(target - step):
            rhs(y, pars=pars, outputs=out)
            y += EULER_DT * out
        step = target
        states.append(y.copy())
    return engine.eps_g_float(compiled, states, [case.params] * len(states)).tolist()


def true_digits(values, reference):
    """Least over alpha > 0 of -log10 |value / reference - 1| (15 where they are equal)."""
    worst = max(abs(float(v) / float(r) - 1) for v, r in zip(values[1:], reference[1:]))
    return 15.0 if worst == 0 else min(15.0, -math.log10(worst))


def float_row(L, end, limits, taylor=None):
    """float64 to alpha = end: new (end to end, then again compiled), lsoda, old, reference, euler.
    The reference is the 30-digit run `taylor` where there is one, else Radau."""
    alphas = grid(end)
    case = Case(L)
    log(f"L = {L} to {end}: new")
    new, t_new, c_new = timed(new_float, limits["new"], case, alphas)
    again, t_again, _ = timed(new_float, limits["new"], case, alphas)
    row = {"L": L, "end": end, "case": case, "new": new, "t_new": t_new + case.derive_warm, "cpu_new": c_new,
           "t_again": t_again}
    for name, fn, allowed in (("radau", radau_reference, True), ("lsoda", lsoda_pair, True),
                              ("old", old_float, L <= limits["old_L"]), ("euler", euler, L <= 64 and end <= 1000)):
        log(f"L = {L} to {end}: {name}")
        result, wall, cpu = timed(fn, limits[name], case, alphas) if allowed else (None, None, None)
        row[name], row["t_" + name], row["c_" + name] = result, wall, cpu
    exact_run = taylor["sol"] if taylor else None
    row["ref"] = [float(v) for v in exact_run.eps_g] if exact_run else row["radau"]
    row["ref_kind"] = "Taylor 30 digits" if exact_run else "Radau"
    if exact_run and row["radau"]:
        row["radau_digits"] = true_digits(row["radau"], row["ref"])
    return row


def taylor_row(L, end, limit, old=False):
    alphas = grid(end) if end > 2 else [Fraction(0), Fraction(1), Fraction(2)]
    case = Case(L)
    log(f"L = {L} to {end}: 30 digits")
    sol, wall, cpu = timed(solve, limit, case.p, case.initial, alphas, digits=30, max_seconds=1e9)
    row = {"L": L, "end": end, "sol": sol, "t_new": wall + case.derive_warm, "cpu": cpu, "case": case,
           "alphas": alphas}
    if old:
        log(f"L = {L} to {end}: old 30 digits")
        exact_initial = ([exact(x) for x in case.p.spectrum.eigenvalues], [exact(w) for w in case.p.spectrum.weights],
                         case.initial.r, case.initial.q, case.initial.t, L)
        row["old"], row["t_old"], _ = timed(baseline.integrate_mp, limit, case.p.structure, exact_initial,
                                            case.p.eta, alphas, digits=30)
    return row


def digits_of(result, reference):
    if result is None:
        return "-", "-"
    verified = min(result["digits"])
    true = f"{true_digits(result['eps'], reference):.1f}" if reference is not None else "-"
    return verified, true


def ratio(a, b):
    return "-" if a is None or b is None or math.isinf(a) or math.isinf(b) else f"{a / b:.1f}"


def float_table(rows, limits):
    lines = ["| L | states | alpha | eta*lambda_1 | lambda_1/lambda_L | derive cold / warm | new end-to-end (cpu) | "
             "new again | new digits verified / true | new rhs calls | lsoda pair | lsoda digits v / t | old (cpu) | "
             "old digits v / t | old/new (cpu) | lsoda/new | Euler dt=0.01 s, true digits | reference |",
             "|" + "---|" * 19]
    for r in rows:
        c, ref = r["case"], r["ref"]
        e = f"{secs(r['t_euler'])}, {true_digits(r['euler'], ref):.1f}" if r["euler"] and ref else "-"
        lines.append(
            f"| {c.L} | {c.n} | {r['end']} | {c.eta_lam1:.3g} | {c.ratio:.3g} | {secs(c.derive_cold)} / "
            f"{secs(c.derive_warm)} | {secs(r['t_new'])} ({secs(r['cpu_new'])}) | {secs(r['t_again'])} | "
            "{} / {} | ".format(*digits_of(r["new"], ref)) + f"{r['new']['nfev'] if r['new'] else '-'} | "
            f"{secs(r['t_lsoda'], limits['lsoda'])} | " + "{} / {} | ".format(*digits_of(r["lsoda"], ref))
            + f"{secs(r['t_old'], limits['old'])} ({secs(r['c_old'])}) | " + "{} / {} | ".format(*digits_of(r["old"], ref))
            + f"{ratio(r['t_old'], r['t_new'])} ({ratio(r['c_old'], r['cpu_new'])}) | "
            f"{ratio(r['t_lsoda'], r['t_new'])} | {e} | {r['ref_kind']} |")
    return lines


def taylor_table(rows, floats):
    lines = ["| L | alpha | new end-to-end (cpu) | digits verified (min) | status | steps | old | old/new |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        sol = r["sol"]
        digits = min(sol.digits) if sol else "-"
        lines.append(f"| {r['L']} | {r['end']} | {secs(r['t_new'])} ({secs(r['cpu'])}) | {digits} | "
                     f"{sol.status.value if sol else '-'} | {sol.stats.get('steps') if sol else '-'} | "
                     f"{secs(r.get('t_old')) if 'old' in r else 'not run'} | "
                     f"{ratio(r.get('t_old'), r['t_new']) if 'old' in r else '-'} |")
    for r in floats:
        if "radau_digits" in r:
            lines.append(f"- Radau (rtol 1e-13) against the 30-digit run, L = {r['L']} to alpha = {r['end']}: "
                         f"{r['radau_digits']:.1f} digits: where there is no 30-digit run, 'true digits' count "
                         "against Radau and are good to about this.")
    return lines


def header(elapsed, quick):
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE.parent, capture_output=True,
                            text=True).stdout.strip()
    load = os.getloadavg()
    return [f"# bench/bench_engine.py results{' (--quick)' if quick else ''}", "",
            f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
            f"- machine: nproc = {os.cpu_count()}, {platform.machine()}, CPython {platform.python_version()}; "
            f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (other work shares the 2 cores: "
            "wall times are inflated, ratios from one run less so)",
            f"- commit {commit}; heyoka {hy.__version__}, numpy {np.__version__}",
            f"- total benchmark time: {elapsed:.0f} s", ""]


def notes():
    return ["- new = solve(problem, initial, alpha) in float64, end to end with a warm derivation (it compiles the "
            "group on its first call); 'new again' = the same call with the group compiled.",
            "- lsoda = the previous engine's route (LSODA, dense finite-difference Jacobian, whole compiled rhs), "
            "verified pair 1e-11 / 1e-12; old = bench/baseline.py (lambdify + DOP853, 1e-9 checked at 1e-11).",
            "- digits: verified = least over alpha of the per-point count of two runs (the old path: one count); "
            "true = least over alpha > 0 against the reference column (the 30-digit run, else Radau at rtol 1e-13).",
            "- derive cold = a fresh EXACTDYN_CACHE; warm = read back from it."]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cases", help="float64 cases only, as L:alpha,L:alpha (prints, writes nothing)")
    options = parser.parse_args(argv)
    quick = options.quick or options.cases is not None
    began = time.perf_counter()
    limits = {"new": 600, "radau": 300, "lsoda": 120 if not quick else 60, "old": 400, "old_L": 64, "euler": 300}
    cases = [(4, 1000), (16, 1000)] if quick else [(4, 1000), (16, 1000), (64, 1000), (256, 1000), (64, 10_000),
                                                     (256, 10_000), (1024, 1000), (1024, 10_000)]
    if options.cases:
        cases = [tuple(int(x) for x in c.split(":")) for c in options.cases.split(",")]
    taylors = [] if options.cases else [taylor_row(4, 2, 600, old=True), taylor_row(4, 1000, 600)]
    if not quick:
        taylors.append(taylor_row(16, 1000, 900))
    by_case = {(r["L"], r["end"]): r for r in taylors}
    floats = [float_row(L, end, limits, by_case.get((L, end))) for L, end in cases]
    lines = header(time.perf_counter() - began, quick)
    lines += ["## float64, erf K = M = 2, beta = 1, eta = 0.5, sigma_J = 0.5 (times in s)", ""]
    lines += float_table(floats, limits) + [""] + notes() + [""]
    lines += ["## 30 digits (new: solve(digits=30), Taylor in MPFR; old: mpmath Bulirsch-Stoer)", ""]
    lines += taylor_table(taylors, floats)
    text = "\n".join(lines) + "\n"
    print(text)
    if not quick:
        (HERE / "results_engine.md").write_text(text)


if __name__ == "__main__":
    main()
