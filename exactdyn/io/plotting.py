"""Learning-curve figures (matplotlib, no display needed)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _float(x):
    try:
        return float(x.mid()) if hasattr(x, "mid") else float(x)
    except (OverflowError, ValueError):
        return float("nan")


SCALES = {"loglog": ("log", "log"), "semilogy": ("linear", "log"), "linear": ("linear", "linear")}


def plot_curves(curves, path, *, title="", bands=(), scale="loglog"):
    """Learning curves, log-log by default: `curves` is a list of (label, alpha, eps_g); `bands` a
    list of (label, alpha, mean, stderr) drawn as mean with a shaded band.  Points a log axis
    cannot show (alpha = 0, eps_g <= 0 or outside float range) are left out."""
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
    fig.savefig(path)
    plt.close(fig)


def curve_from_file(path):
    """(label, alpha, eps_g, stderr or None) from a `solve` or `simulate` JSON output."""
    import json

    from ..simulate.check import _alpha, _finite, _load_text, _reject_constant
    from ..errors import ExactdynError

    try:
        data = json.loads(_load_text(path), parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ExactdynError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict) or not isinstance(data.get("alpha"), list) or not isinstance(data.get("eps_g"), list):
        raise ExactdynError(f"{path} has no 'alpha' and 'eps_g' lists (a solve or simulate JSON output)")
    alpha = _alpha([_finite(a, f"{path}: alpha[{i}]") for i, a in enumerate(data["alpha"])])
    if len(data["eps_g"]) != len(alpha):
        raise ExactdynError(f"{path}: eps_g has {len(data['eps_g'])} entries, alpha {len(alpha)}")
    eps = [_finite(e, f"{path}: eps_g[{i}]") for i, e in enumerate(data["eps_g"])]
    stderr = data.get("eps_g_stderr")
    if stderr is not None:
        if not isinstance(stderr, list) or len(stderr) != len(alpha):
            raise ExactdynError(f"{path}: eps_g_stderr must be a list as long as alpha")
        stderr = [0.0 if s is None else _finite(s, f"{path}: eps_g_stderr[{i}]") for i, s in enumerate(stderr)]
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    parts = [str(meta[k]) if k == "activation" else f"{k}={meta[k]}" for k in ("activation", "L", "eta", "N")
             if k in meta]
    label = ", ".join(parts) or str(path)
    label = f"SGD {label}" if "N" in meta else f"exactdyn {label}"
    return label, alpha, eps, stderr
