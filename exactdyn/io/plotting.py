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
