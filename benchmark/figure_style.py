"""One style for every paper figure: a fixed colour, line style and marker per method (stable across
figures, readable in greyscale), PNG for the README and PDF for the paper."""

from __future__ import annotations

import hashlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

#: Colour-blind-safe palette (Okabe-Ito), in a fixed order for the registered methods.
PALETTE = ["#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999"]
KNOWN = ["early_fusion", "late_fusion", "robult", "mm_dro", "ef_dro", "gmm_adaptive", "conformal_shapley"]
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 2))]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "h"]


def _index(method: str) -> int:
    if method in KNOWN:
        return KNOWN.index(method)
    return len(KNOWN) + int(hashlib.sha256(method.encode()).hexdigest(), 16) % 2


def method_style(method: str) -> dict:
    i = _index(method)
    return {"color": PALETTE[i % len(PALETTE)], "linestyle": LINESTYLES[i % len(LINESTYLES)],
            "marker": MARKERS[i % len(MARKERS)]}


def apply() -> None:
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "font.size": 9, "axes.titlesize": 9,
                         "axes.labelsize": 9, "legend.fontsize": 8, "axes.grid": True, "grid.alpha": 0.3,
                         "savefig.bbox": "tight", "pdf.fonttype": 42, "svg.hashsalt": "robust-mm-bench",
                         "path.simplify": False})


def save(fig, out_dir: Path, name: str) -> list[Path]:
    """Write ``name``.png and ``name``.pdf (no timestamps in the PDF, so reruns are byte-stable)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    fig.savefig(paths[0], metadata={"Software": None})
    fig.savefig(paths[1], metadata={"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None})
    plt.close(fig)
    return paths


def grid(n: int, ncols: int = 3, size: tuple[float, float] = (3.2, 2.6)):
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False,
                             layout="constrained")
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]
