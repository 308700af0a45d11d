"""What each seed method's records say about whether it ran as its paper intends, beside the scores: a
method can rank well or badly for a reason the scores hide (conformal_shapley abstaining, a GMM that
falls back to one component, saturated PU weights). Read from the records' extras, one table each."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from benchmark.records import RunRecord
from benchmark.report.markdown import md_table
from benchmark.results import Results

#: A dataset is flagged when more than this share of a gmm_adaptive run's GMM fits fell back to one
#: component (BIC): the method's premise, a bimodal modality gap, does not hold there.
GMM_FALLBACK_FLAG = 0.5
#: The spec's healthy range of Robult's mean off-diagonal PU weight.
PU_HEALTHY = (0.05, 0.5)


def _mean(values: list[float | None]) -> float:
    v = [x for x in values if x is not None and np.isfinite(x)]
    return float(np.mean(v)) if v else float("nan")


def _fmt(x: float, pct: bool = False) -> str:
    if not np.isfinite(x):
        return "—"
    return f"{x * 100:.1f}" if pct else f"{x:.3g}"


def _groups(results: Results, base: str) -> dict[tuple[str, str, str], list[RunRecord]]:
    out: dict[tuple[str, str, str], list[RunRecord]] = {}
    for r in results.ok:
        if r.spec.method == base:
            out.setdefault((r.method, r.dataset, r.spec.train_condition), []).append(r)
    return dict(sorted(out.items()))


def _table(results: Results, base: str, header: list[str],
           row: Callable[[list[RunRecord]], list[str]]) -> list[str]:
    rows = [[m, d, t, *row(recs), str(len(recs))] for (m, d, t), recs in _groups(results, base).items()]
    return md_table(["row", "dataset", "training", *header, "runs"], rows) if rows else []


def _conformal(recs: list[RunRecord]) -> list[str]:
    summaries = [r.extra("extras_test", "selection_summary") or {} for r in recs]
    bound = sorted({str(s.get("selection_bound")) for s in summaries if s.get("selection_bound")})
    return [", ".join(bound) or "—", _fmt(_mean([s.get("q") for s in summaries])),
            _fmt(_mean([s.get("mean_selected") for s in summaries])),
            _fmt(_mean([s.get("abstention_rate") for s in summaries]), pct=True)]


def _gmm(recs: list[RunRecord]) -> list[str]:
    share = _mean([r.extra("extras", "gmm_fallback_share") for r in recs])
    flag = "**premise fails: most fits unimodal**" if np.isfinite(share) and share > GMM_FALLBACK_FLAG else ""
    return [_fmt(share, pct=True), flag]


def _robult(recs: list[RunRecord]) -> list[str]:
    w = _mean([r.extra("extras", "rbf_mean_offdiag_w_overall") for r in recs])
    healthy = "" if not np.isfinite(w) or PU_HEALTHY[0] <= w <= PU_HEALTHY[1] else "**outside 0.05–0.5**"
    return [_fmt(w), healthy]


def diagnostics_markdown(results: Results) -> str:
    parts = [
        ("conformal_shapley", "Conformal Shapley's selection on the clean test split: the bound that ranks, the "
         "selected q (mean over runs), the mean number of modalities selected, and the share of samples with "
         "nothing selected (predicted by class frequencies).",
         ["bound", "q", "modalities selected", "abstained (%)"], _conformal),
        ("gmm_adaptive", f"GMM-guided loss: the share of GMM fits where BIC preferred one component (every "
         f"weight 0.5, nothing guided); flagged above {GMM_FALLBACK_FLAG:.0%}.",
         ["fits unimodal (%)", "flag"], _gmm),
        ("robult", f"Robult: the mean off-diagonal soft-PU weight (the spec's healthy range {PU_HEALTHY[0]}–"
         f"{PU_HEALTHY[1]}).", ["mean PU weight", "flag"], _robult),
    ]
    lines: list[str] = []
    for base, text, header, row in parts:
        table = _table(results, base, header, row)
        if table:
            lines += ["", text, "", *table]
    return ("\n## Method diagnostics\n" + "\n".join(lines) + "\n") if lines else ""
