"""One style for every paper figure, sized for a journal: at most one page width (7 in) by 9 in, text of
at least 6 pt at that size, a fixed colour, line style and marker per method (stable across figures and
readable in greyscale: no colour lighter than ``MAX_LUMINANCE``, so Okabe-Ito's yellow is left out),
legends outside the data, accuracy in percent as in the tables; PNG for the README and the page, PDF for
the paper, both the same bytes on every run and whatever the hash seed."""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

#: Okabe-Ito without the yellow (#F0E442, invisible on white): black, orange, sky blue, bluish green,
#: blue, vermillion, reddish purple; in a fixed order for the registered methods.
PALETTE = ["#000000", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7"]
KNOWN = ["early_fusion", "late_fusion", "robult", "mm_dro", "ef_dro", "gmm_adaptive", "conformal_shapley"]
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 2))]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "h"]
#: The most a line's colour may weigh in relative luminance (WCAG) to stay visible on white and in greyscale.
MAX_LUMINANCE = 0.5
#: Page width and the tallest figure a journal page holds (inches); one column is half the page.
PAGE_WIDTH, COLUMN_WIDTH, MAX_HEIGHT = 7.0, 3.5, 9.0
MIN_FONT = 6.0
#: The file name's suffix of the figure drawn now (one per training condition; empty for ``standard``).
SUFFIX: ContextVar[str] = ContextVar("figure_suffix", default="")


def luminance(colour: str) -> float:
    """Relative luminance (WCAG 2) of a colour: 0 black, 1 white."""
    rgb = matplotlib.colors.to_rgb(colour)
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _index(method: str) -> int:
    if method in KNOWN:
        return KNOWN.index(method)
    return int(hashlib.sha256(method.encode()).hexdigest(), 16) % len(PALETTE)


def method_style(method: str) -> dict:
    """Colour, line style and marker of a method label; a variant ``base+what`` of a registered method
    takes its base's colour and marker, hollow, on another line style, so it reads as its base's sibling."""
    base = method.split("+", 1)[0]
    if base != method and base in KNOWN:
        i = KNOWN.index(base)
        return {"color": PALETTE[i], "linestyle": LINESTYLES[(i + 3) % len(LINESTYLES)], "marker": MARKERS[i],
                "markerfacecolor": "white"}
    i = _index(method)
    return {"color": PALETTE[i % len(PALETTE)], "linestyle": LINESTYLES[i % len(LINESTYLES)],
            "marker": MARKERS[i % len(MARKERS)]}


def apply() -> None:
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 200, "font.size": 8, "axes.titlesize": 8,
                         "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7, "legend.fontsize": 7,
                         "figure.titlesize": 9, "axes.grid": True, "grid.alpha": 0.3, "lines.linewidth": 1.2,
                         "lines.markersize": 4, "pdf.fonttype": 42, "svg.hashsalt": "robust-mm-bench",
                         "path.simplify": False, "savefig.bbox": None, "figure.constrained_layout.use": False})


def percent(ax, axis: str = "y") -> None:  # noqa: ANN001 - a matplotlib Axes
    """Label a fraction axis in percent, as the tables show accuracy."""
    fmt = FuncFormatter(lambda v, _: f"{v * 100:.0f}")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def integer_ticks(ax, axis: str = "x") -> None:  # noqa: ANN001
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(integer=True))


@contextmanager
def suffix(text: str):  # noqa: ANN201
    """Files saved inside get ``text`` appended to their name (the training condition drawn)."""
    token = SUFFIX.set(text)
    try:
        yield
    finally:
        SUFFIX.reset(token)


def legend_below(fig, axes, ncol: int | None = None) -> None:  # noqa: ANN001
    """One legend for the figure, outside the data (below the panels), with every label drawn in any panel
    once, in first-seen order."""
    handles: dict[str, object] = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if not label.startswith("_"):
                handles.setdefault(label, h)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   ncol=ncol or min(len(handles), 4), frameon=False)


def save(fig, out_dir: Path, name: str) -> list[Path]:  # noqa: ANN001
    """Write ``name``.png and ``name``.pdf (no timestamps or software versions in either, so reruns are
    the same bytes); the figure's size is kept (no tight bounding box), so it is what ``figure`` asked."""
    out_dir.mkdir(parents=True, exist_ok=True)
    name += SUFFIX.get()
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    fig.savefig(paths[0], metadata={"Software": None})
    fig.savefig(paths[1], metadata={"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None})
    plt.close(fig)
    return paths


def grid(n: int, ncols: int = 2, panel_height: float = 2.2, width: float = PAGE_WIDTH, legend: bool = True,
         size: tuple[float, float] | None = None):  # noqa: ANN201
    """A figure of ``n`` panels, ``width`` inches wide (page or column), at most ``MAX_HEIGHT`` tall (the
    panels shrink to fit), with room below for a legend outside the data. ``size`` (a panel's width and
    height, the older call) is read as the panel height, the width capped at the page's."""
    ncols = max(1, min(ncols, n))
    if size is not None:
        width, panel_height = min(PAGE_WIDTH, size[0] * ncols), size[1]
    nrows = (n + ncols - 1) // ncols
    height = min(MAX_HEIGHT, panel_height * nrows + (0.5 if legend else 0.2))
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, layout="constrained")
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]
