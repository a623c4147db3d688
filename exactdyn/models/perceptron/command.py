"""`exactdyn perceptron solve|simulate|check`: the command line's side of the perceptron.

simulate writes JSON with the model, the means and standard errors over seeds; check reads such a
file (plain JSON, numbers read exactly, nothing evaluated) and judges it against the ODE.  A file
without "N" is another code's ODE trajectory ("points": alpha, eps_g, norm), judged by --rtol."""
import json
import math

from ...errors import ExactdynError
from ...numbers import to_fraction
from ...spectrum import from_eigenvalues
from .dynamics import Perceptron, State, solve
from .sgd import compare_deterministic, compare_summary, simulate

MAX_FILE = 10_000_000


def _spectrum_strings(spectrum):
    if not spectrum.exact:
        raise ExactdynError("simulate/check files need an exact spectrum (a whole-number beta or --eigenvalues)")
    text = lambda q: str(q.p) if q.q == 1 else f"{q.p}/{q.q}"
    return [text(x) for x in spectrum.eigenvalues], [text(w) for w in spectrum.weights]


def _model_data(model, spectrum, sigma_J):
    lam, frac = _spectrum_strings(spectrum)
    return {"model": "perceptron", "rule": model.rule, "eta": str(model.eta), "p_flip": str(model.p_flip),
            "eigenvalues": lam, "fractions": frac, "sigma_J": str(sigma_J)}


def run(args, spectrum, out):
    """The action of `exactdyn perceptron ACTION`; returns the exit status."""
    if args.action == "check":
        return _check(args, out)
    model = Perceptron.on(args.rule, spectrum, args.eta, args.p_flip)
    alpha = [float(a) for a in args.alpha]
    if args.action == "solve":
        traj = solve(model, State.expected(model, args.sigma_J), alpha)
        rows = [{"alpha": a, "eps_g": _digits(e, d), "norm": _digits(n, d), "digits": int(d)}
                for a, e, n, d in zip(alpha, traj.eps_g, traj.norm, traj.digits)]
        head = (_model_data(model, spectrum, args.sigma_J) if spectrum.exact else
                {"rule": model.rule, "eta": str(model.eta), "p_flip": str(model.p_flip), "sigma_J": str(args.sigma_J)})
        _write(out, args.format, {**head, "spectrum": spectrum.label, "points": rows})
        return 0 if all(d >= 1 for d in traj.digits) else 3
    sim = simulate(model, alpha, N=args.N, seeds=range(args.seed, args.seed + args.seeds), sigma_J=args.sigma_J)
    eps, norm = sim.series(model.eigenvalues)
    se = lambda v: v.std(1, ddof=1) / math.sqrt(v.shape[1]) if v.shape[1] > 1 else v[:, 0] * math.nan
    data = {**_model_data(model, spectrum, args.sigma_J), "N": args.N, "seeds": len(sim.seeds), "points": [
        {"alpha": a, "eps_g": float(m), "eps_g_stderr": _finite(s), "norm": float(n), "norm_stderr": _finite(t)}
        for a, m, s, n, t in zip(alpha, eps.mean(1), se(eps), norm.mean(1), se(norm))]}
    _write(out, args.format, data)
    return 0


def _digits(value, digits):
    return float(f"{value:.{max(1, int(digits))}g}")


def _finite(value):
    return float(value) if math.isfinite(value) else None


def _write(out, fmt, data):
    if fmt == "json":
        out.write(json.dumps(data, indent=1) + "\n")
        return
    keys = list(data["points"][0])
    out.write(",".join(keys) + "\n")
    out.write("".join(",".join("" if p[k] is None else str(p[k]) for k in keys) + "\n" for p in data["points"]))


def _check(args, out):
    with open(args.file, encoding="utf-8") as fh:
        text = fh.read(MAX_FILE + 1)
    if len(text) > MAX_FILE:
        raise ExactdynError(f"{args.file} is larger than {MAX_FILE} bytes")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ExactdynError(f"{args.file} is not JSON: {str(exc)[:200]}") from None
    if not isinstance(data, dict) or data.get("model") != "perceptron":
        raise ExactdynError(f"{args.file} is not the output of `exactdyn perceptron simulate`")
    try:
        spectrum = from_eigenvalues(data["eigenvalues"], data["fractions"])
        model = Perceptron.on(str(data["rule"]), spectrum, data["eta"], data["p_flip"])
        points = data["points"]
        if not isinstance(points, list) or not points:
            raise ExactdynError("the file has no points")
        column = lambda key: [float(to_fraction(p[key], key)) for p in points]
        alpha = column("alpha")
        sigma_J = data["sigma_J"]
        if "N" not in data:  # another code's ODE: relative deviations
            d_eps, d_norm, ok = compare_deterministic(model, sigma_J, alpha, column("eps_g"), column("norm"),
                                                      rtol=args.rtol)
            out.write(f"{'consistent' if ok else 'NOT consistent'} with the ODE: largest relative deviation "
                      f"{d_eps:.2g} in eps_g, {d_norm:.2g} in the norm |J|^2/N (rtol {args.rtol:g}; "
                      f"{len(alpha)} times, {model.rule} rule)\n")
            return 0 if ok else 1
        series = [column(k) for k in ("eps_g", "eps_g_stderr", "norm", "norm_stderr")]
    except (KeyError, TypeError) as exc:
        raise ExactdynError(f"{args.file} lacks a field or has one of the wrong type: {exc}") from None
    cmp = compare_summary(model, sigma_J, alpha, *series, threshold=args.threshold)
    z_eps, z_norm = cmp.z
    verdict = "consistent" if cmp.consistent else "NOT consistent"
    out.write(f"{verdict} with the ODE: largest deviation {z_eps:.2f} standard errors in eps_g, {z_norm:.2f} in "
              f"the norm |J|^2/N (threshold {args.threshold:g}; {len(alpha)} times, {model.rule} rule)\n")
    return 0 if cmp.consistent else 1
