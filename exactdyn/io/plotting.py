"""Learning-curve figures (matplotlib, no display needed)."""
import os

import matplotlib

matplotlib.use("Agg")
from matplotlib.font_manager import FontProperties  # noqa: E402
from matplotlib.mathtext import MathTextParser  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from ..errors import ExactdynError  # noqa: E402

MAX_TEXT = 300


def _float(x):
    try:
        return float(x.mid()) if hasattr(x, "mid") else float(x)
    except (OverflowError, ValueError):
        return float("nan")


SCALES = {"loglog": ("log", "log"), "semilogy": ("linear", "log"), "linear": ("linear", "linear")}


def check_png_path(path, what="the figure"):
    """A writable-looking .png path: a named file (not '.png', not a directory) in an existing directory."""
    if not isinstance(path, (str, os.PathLike)):
        raise ExactdynError(f"{what} needs a file name, got {type(path).__name__}")
    path = os.fspath(path)
    name = os.path.basename(path)
    if not name.lower().endswith(".png") or name.lower() == ".png":
        raise ExactdynError(f"{what} must name a .png file, got {path!r}")
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        raise ExactdynError(f"cannot save {what}: no directory {parent!r}")
    if os.path.isdir(path):
        raise ExactdynError(f"cannot save {what}: {path!r} is a directory")
    return path


def _check_text(text, what):
    """Plain text, or mathtext between $ signs that matplotlib can typeset (checked before drawing)."""
    if not isinstance(text, str):
        raise ExactdynError(f"the {what} must be text, got {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise ExactdynError(f"the {what} is longer than {MAX_TEXT} characters")
    dollars = text.count("$") - text.count(r"\$")
    if dollars > 0 and dollars % 2 == 0:  # matplotlib's own rule for math mode
        try:
            MathTextParser("agg").parse(text, 72, FontProperties())
        except ValueError as exc:
            raise ExactdynError(f"the {what} {text[:40]!r} is not valid mathtext: "
                                f"{str(exc).splitlines()[-1].strip()[:60]}") from None


def _check_curves(curves, bands, scale, title):
    if scale not in SCALES:
        raise ExactdynError(f"unknown scale {scale!r}: choose {', '.join(SCALES)}")
    _check_text(title, "title")
    for rows, size, what in ((curves, 3, "curves"), (bands, 4, "bands")):
        if isinstance(rows, (str, bytes)) or not isinstance(rows, (list, tuple)):
            raise ExactdynError(f"{what} must be a list of tuples")
        for row in rows:
            if not isinstance(row, (list, tuple)) or len(row) != size:
                raise ExactdynError(f"each of the {what} must be a tuple of {size} items")
            _check_text(row[0], "curve label")


def plot_curves(curves, path, *, title="", bands=(), scale="loglog"):
    """Learning curves, log-log by default: `curves` is a list of (label, alpha, eps_g); `bands` a
    list of (label, alpha, mean, stderr) drawn as mean with a shaded band.  Points a log axis
    cannot show (alpha = 0, eps_g <= 0 or outside float range) are left out."""
    path = check_png_path(path)
    _check_curves(curves, bands, scale, title)
    xscale, yscale = SCALES[scale]
    keep = lambda a, e: (xscale == "linear" or a > 0) and (yscale == "linear" or e > 0)
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
    for label, alpha, eps in curves:
        pts = [(float(a), _float(e)) for a, e in zip(alpha, eps) if keep(float(a), _float(e))]
        if pts:
            ax.plot(*zip(*pts), "-", marker="." if len(pts) < 30 else None, label=label)
    for label, alpha, mean, err in bands:
        pts = [(float(a), m, s) for a, m, s in zip(alpha, mean, err) if keep(float(a), m)]
        if pts:
            a, m, s = map(list, zip(*pts))
            low = [max(x - y, x * 1e-3) if yscale == "log" else x - y for x, y in zip(m, s)]
            ax.fill_between(a, low, [x + y for x, y in zip(m, s)], alpha=0.3)
            ax.plot(a, m, "--", label=label)
    ax.set_xscale(xscale)
    ax.set_yscale(yscale)
    ax.set_xlabel(r"$\alpha$ (examples per input dimension)")
    ax.set_ylabel(r"$\epsilon_g$")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        fig.savefig(path)
    except OSError as exc:
        raise ExactdynError(f"cannot save {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
