"""The command line's argument readers and the options of its commands (cli.py declares plateau's
and late's next to them).  Numbers are read exactly; a bad one is a one-line error (exit status 2)."""
import argparse
import re

from .errors import ExactdynError
from .numbers import to_fraction
from .symbolic.expectations import activation_names
from .symbolic.render import format_names

DEFAULT_DIGITS = 30
EPILOG = ("exit status: 0 success (solve: every point vouched for; check: consistent); 1 check: not consistent; "
          "2 bad input or a request that cannot be met; 3 solve: some points unverified (printed as "
          "'unverified', null in JSON)")


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ExactdynError(message)


_WHOLE = re.compile(r"^[+-]?[0-9]{1,18}$")
MAX_DIGITS = 1000


def whole(text):
    """A whole number written in plain ASCII digits (no '1_000', '0x10', '1e3')."""
    if not _WHOLE.match(text.strip()):
        raise argparse.ArgumentTypeError(f"expected a whole number (at most 18 digits), got {text[:40]!r}")
    return int(text)


def positive_int(text):
    value = whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def seed(text):
    value = whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed must be >= 0, got {value}")
    return value


def digits(text):
    value = positive_int(text)
    if value > MAX_DIGITS:
        raise argparse.ArgumentTypeError(f"digits must be at most {MAX_DIGITS}, got {value}")
    return value


def real(text):
    """A finite float, read exactly first (so 'nan', 'inf', '1e999999999' are refused)."""
    return float(number(text))


def checked_real(text):
    """A float; 'nan' and 'inf' pass through to the command, whose own check names the option."""
    if text.strip().lower().lstrip("+-") in ("nan", "inf", "infinity"):
        return float(text)
    return real(text)


def number(text):
    try:
        return to_fraction(text)
    except ExactdynError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def number_list(text):
    parts = text.split(",")
    if any(not p.strip() for p in parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
    return [number(p) for p in parts]


def nonnegative_list(text):
    values = number_list(text)
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"alpha must be >= 0, got {text!r}")
    return values


def _options():
    """Options several commands share: flag -> argparse keywords (adjusted per command by add)."""
    return {
        "--L": dict(type=positive_int, help="number of distinct eigenvalues (power law)"),
        "--beta": dict(type=number, help="power-law exponent, lambda_l ~ l^-(1+beta) (default 1)"),
        "--eigenvalues": dict(type=number_list, help="comma-separated distinct eigenvalues instead"),
        "--weights": dict(type=number_list, help="fraction of dimensions of each eigenvalue"),
        "--activation": dict(default="linear", choices=activation_names(), help="activation g"),
        "--K": dict(type=positive_int, help="student width"),
        "--M": dict(type=positive_int, help="teacher width"),
        "--output-weights": dict(choices=["one", "sqrt", "mean"], help="output weight convention"),
        "--eta": dict(type=number, required=True, help="learning rate"),
        "--sigma-J": dict(type=number, default=0, help="student initial scale"),
        "--alpha": dict(type=nonnegative_list, required=True, help="comma-separated increasing times alpha"),
        "--init": dict(help="initial overlaps per eigenvalue group (JSON file)"),
        "--N": dict(type=positive_int, help="start from a finite-N draw of this dimension"),
        "--seed": dict(type=seed, default=0, help="seed of the draw or of the symmetry-breaking perturbation"),
        "--seeds": dict(type=positive_int, default=8, help="number of seeds"),
        "--overlaps": dict(action="store_true", help="JSON: also the overlaps per group"),
        "--plot": dict(help="also save a log-log plot to this PNG file"),
        "--format": dict(choices=["text", "json"], default="text"),
    }


SPECTRUM = ("--L", "--beta", "--eigenvalues", "--weights")
MODEL = ("--activation", "--K", "--M", "--output-weights")


def add(parser, *flags, **changes):
    """Add the shared options `flags`; a keyword (the flag's name, e.g. sigma_J) adjusts one."""
    options = _options()
    for flag in flags:
        parser.add_argument(flag, **{**options[flag], **changes.get(flag.strip("-").replace("-", "_"), {})})


def add_spectrum_arguments(parser):
    add(parser, *SPECTRUM)


def add_model_arguments(parser, default_width, activation="linear"):
    add(parser, *MODEL, activation=dict(default=activation), K=dict(default=default_width),
        M=dict(default=default_width))


def _main_parsers(sub, run):
    sp_ = sub.add_parser("spectrum", help="eigenvalues, minimal polynomial and traces of an input spectrum")
    add(sp_, *SPECTRUM, "--format")
    sp_.add_argument("--traces", type=positive_int, help="highest trace order (default L+1)")
    sp_.add_argument("--digits", type=digits, default=DEFAULT_DIGITS, help="digits for irrational values")
    sp_.set_defaults(run=run["spectrum"])
    d = sub.add_parser("derive", help="derive and print the closed ODE system")
    add_model_arguments(d, default_width=2, activation="erf")
    add(d, "--L", "--format", L=dict(default=1), format=dict(choices=format_names()))
    d.add_argument("--poly", type=number_list, help="polynomial activation coefficients a_0,a_1,... instead")
    d.add_argument("--loss-factor", type=number, help="loss c (sigma - zeta)^2 (default 1/2; 1 for quadratic)")
    d.add_argument("--basis", choices=["moment", "mode"], default="moment")
    d.add_argument("--no-cache", action="store_true", help="derive afresh, leaving the disk cache alone")
    d.set_defaults(run=run["derive"])
    so = sub.add_parser("solve", help="eps_g(alpha): certified (linear) or verified digits", epilog=EPILOG)
    add_model_arguments(so, default_width=None)
    add(so, *SPECTRUM, "--eta", "--sigma-J", "--alpha", "--init", "--N", "--seed", "--overlaps", "--plot",
        "--format", format=dict(choices=["json", "csv", "text"]))
    so.add_argument("--digits", type=digits, help=f"certified digits (linear K = M = 1, default "
                    f"{DEFAULT_DIGITS}); other networks: verified digits at arbitrary precision (default: float64)")
    so.add_argument("--route", choices=["mode", "moment"], default="mode", help="linear: eigenmode or moment route")
    so.add_argument("--trainable", type=positive_int, help="only the first N eigenvalue groups are trainable")
    so.add_argument("--random-subspace", type=number, help="linear: train in Haar-random subspaces of this fraction")
    so.add_argument("--draws", type=positive_int, default=4, help="subspaces drawn with --random-subspace")
    so.add_argument("--approximations", action="store_true", help="also the small-eta and integral approximations")
    so.set_defaults(run=run["solve"])


def _data_parsers(sub, run):
    si = sub.add_parser("simulate", help="finite-N one-pass SGD, mean and standard error over seeds")
    add_model_arguments(si, default_width=1)
    add(si, *SPECTRUM, "--eta", "--sigma-J", "--alpha", "--N", "--seeds", "--seed", "--overlaps", "--plot",
        "--format", N=dict(required=True, help="input dimension"), seed=dict(help="first seed"),
        format=dict(choices=["json", "csv"], default="json"))
    si.add_argument("--init-seed", type=seed, help="all seeds start from this one draw (only the data differ)")
    si.add_argument("--method", choices=("auto", "full", "chain"), default="auto",
                    help="auto: the exact per-group overlap chain from N = 4096 (full: N-dimensional SGD)")
    si.set_defaults(run=run["simulate"])
    ch = sub.add_parser("check", help="compare a trajectory from another code with exactdyn's prediction",
                        epilog=EPILOG)
    ch.add_argument("file", help="trajectory, JSON or CSV (schemas: exactdyn.io.trajectories)")
    add(ch, "--init", "--activation", "--eta", "--output-weights", "--N", "--seeds", "--format",
        activation=dict(default=None), eta=dict(required=False), seeds=dict(default=None),
        N=dict(help="input dimension of a finite-N simulation"))
    ch.add_argument("--threshold", type=checked_real, default=5.0, help="finite N: largest deviation in fluctuation units")
    ch.add_argument("--rtol", type=checked_real, default=1e-6, help="no N: largest relative deviation allowed")
    ch.set_defaults(run=run["check"])
    pl = sub.add_parser("plot", help="learning curves from solve/simulate JSON outputs")
    pl.add_argument("files", nargs="+", help="JSON outputs of solve or simulate")
    pl.add_argument("--out", required=True, help="PNG file to write")
    pl.add_argument("--scale", choices=["loglog", "semilogy", "linear"], default="loglog")
    pl.add_argument("--title", default="", help="figure title")
    pl.set_defaults(run=run["plot"])


def add_commands(sub, run):
    """Every command but plateau and late; `run` maps a command's name to its function."""
    _main_parsers(sub, run)
    _data_parsers(sub, run)
    la = sub.add_parser("landscape", help="quadratic network: Hessian spectra at the stationary points")
    add(la, "--K", "--M", "--N", "--seed", "--format", K=dict(default=4, help="student width p"),
        M=dict(default=2, help="teacher width p*"), N=dict(default=20, help="input dimension"),
        seed=dict(help="seed of the random rotation of the numerical check"))
    la.set_defaults(run=run["landscape"])
    demo = sub.add_parser("demo", help="the main job on built-in defaults")
    add(demo, "--N", "--seeds", "--plot", N=dict(default=1024, help="input dimension of the simulation"),
        seeds=dict(default=6, help="number of simulation seeds (>= 2)"),
        plot=dict(default="exactdyn-demo.png", help="where to save the figure"))
    demo.set_defaults(run=run["demo"])


def name_list(text):
    parts = [p.strip() for p in text.split(",")]
    if not all(parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text[:40]!r}")
    return parts


def add_sweep_parser(sub, run):
    """`sweep`: every list option is comma-separated; the library checks the values (whole numbers,
    ranges, activation names) so that the CLI and Python refuse the same grids."""
    sw = sub.add_parser("sweep", help="solve or plateau over a parameter grid, in parallel and resumable",
                        epilog="exit status: 0 every point ran; 2 bad input; 3 some points failed or unverified")
    for flag, what in (("--eta", "learning rates"), ("--L", "numbers of eigenvalues (power law)"),
                       ("--beta", "power-law exponents"), ("--K", "student widths"), ("--M", "teacher widths"),
                       ("--sigma-J", "student initial scales"), ("--seed", "seeds of the symmetry breaking")):
        sw.add_argument(flag, type=number_list, help=f"comma-separated {what}")
    sw.add_argument("--activation", type=name_list, help="comma-separated activations (default erf)")
    sw.add_argument("--kind", choices=["solve", "plateau"], default="solve")
    sw.add_argument("--alpha", type=nonnegative_list, help="comma-separated increasing times alpha (solve)")
    sw.add_argument("--digits", type=positive_int, help="digits per point (default: float64, plateau 20)")
    sw.add_argument("--out", required=True, help="output stem: STEM.csv, .parquet, .png, .progress.jsonl")
    sw.add_argument("--workers", type=positive_int, default=2, help="local worker processes (default 2)")
    sw.add_argument("--scheduler", help="address of a running dask scheduler instead, e.g. tcp://host:8786")
    sw.add_argument("--limit", type=positive_int, help="stop after this many newly finished points")
    sw.set_defaults(run=run)


def add_perceptron_parser(sub, run):
    """`perceptron solve|simulate|check`: the perceptron classifier (exactdyn.models.perceptron)."""
    from .models.perceptron.rules import rule_names

    pe = sub.add_parser("perceptron", help="perceptron classifier: solve the ODEs, simulate SGD, check a simulation",
                        epilog="exit status: 0 success / consistent; 1 check: not consistent; 2 bad input; "
                               "3 solve: some points unverified")
    act = pe.add_subparsers(dest="action", parser_class=Parser, required=True)
    for name, text in (("solve", "eps_g and the norm |J|^2/N along the ODE (float64, verified digits)"),
                       ("simulate", "finite-N one-pass SGD: means and standard errors over seeds (JSON or CSV)")):
        a = act.add_parser(name, help=text)
        a.add_argument("--rule", default="logistic", help=f"update rule: {', '.join(rule_names())} (default logistic)")
        a.add_argument("--p-flip", type=number, default=0, help="probability that a label is flipped (default 0)")
        add(a, *SPECTRUM, "--eta", "--alpha", "--sigma-J",
            sigma_J=dict(default=1, help="student initial scale (default 1)"))
        if name == "simulate":
            add(a, "--N", "--seeds", "--seed", N=dict(required=True, help="input dimension"),
                seed=dict(help="first seed"))
        add(a, "--format", format=dict(choices=["json", "csv"], default="json" if name == "simulate" else "csv"))
    ch = act.add_parser("check", help="judge a `perceptron simulate` file or another code's trajectory (JSON)")
    ch.add_argument("file", help="JSON written by `exactdyn perceptron simulate`, or without N an ODE trajectory")
    ch.add_argument("--threshold", type=checked_real, default=4.0,
                    help="finite N: largest deviation allowed, in standard errors of the mean (default 4)")
    ch.add_argument("--rtol", type=checked_real, default=1e-6,
                    help="a file without N (another ODE code): largest relative deviation (default 1e-6)")
    pe.set_defaults(run=run)
