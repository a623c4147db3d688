"""Learning-curve figures (matplotlib, no display needed)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _float(x):
    try:
        return float(x.mid()) if hasattr(x, "mid") else float(x)
    except (OverflowError, ValueError):
        return float("nan")


def plot_curves(curves, path, *, title="", bands=()):
    """Log-log learning curves: `curves` is a list of (label, alpha, eps_g); `bands` a list of
    (label, alpha, mean, stderr) drawn as mean with a shaded band.  Points at alpha = 0 or with
    eps_g outside float range are left out of the log axes."""
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
    for label, alpha, eps in curves:
        pts = [(float(a), _float(e)) for a, e in zip(alpha, eps) if float(a) > 0 and _float(e) > 0]
        if pts:
            ax.plot(*zip(*pts), "-", marker="." if len(pts) < 30 else None, label=label)
    for label, alpha, mean, err in bands:
        pts = [(float(a), m, s) for a, m, s in zip(alpha, mean, err) if float(a) > 0 and m > 0]
        if pts:
            a, m, s = map(list, zip(*pts))
            ax.fill_between(a, [max(x - y, x * 1e-3) for x, y in zip(m, s)], [x + y for x, y in zip(m, s)], alpha=0.3)
            ax.plot(a, m, "--", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$\alpha$ (examples per input dimension)")
    ax.set_ylabel(r"$\epsilon_g$")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
