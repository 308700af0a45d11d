"""The leaderboard's method diagnostics read what the records say about each method's own mechanism."""

from __future__ import annotations

from types import SimpleNamespace

from benchmark.records import RunRecord
from benchmark.report.diagnostics import diagnostics_markdown


def rec(method: str, dataset: str, extras: dict, extras_test: dict | None = None, label: str = "") -> SimpleNamespace:
    """A record as the diagnostics read it: a RunRecord's body and ``extra``, with the spec's fields the
    grouping uses."""
    spec = SimpleNamespace(method=method, train_condition="standard", label=label)
    body = {"extras": extras, "extras_test": extras_test or {}}
    return SimpleNamespace(spec=spec, method=label or method, dataset=dataset, body=body,
                           extra=lambda *path: RunRecord.extra(SimpleNamespace(body=body), *path))


def gmm_extras(fits: int, fallbacks: int) -> dict:
    """What gmm_adaptive writes (methods/gmm_adaptive.py)."""
    return {"gmm_fits": fits, "gmm_fallbacks": fallbacks, "gmm_fallback_share": fallbacks / fits}


def test_a_dataset_where_most_gmm_fits_fell_back_is_flagged() -> None:
    ok = [rec("gmm_adaptive", "a", gmm_extras(10, 9)), rec("gmm_adaptive", "a", gmm_extras(10, 7)),
          rec("gmm_adaptive", "b", gmm_extras(10, 1))]
    md = diagnostics_markdown(SimpleNamespace(ok=ok))
    line_a = next(x for x in md.splitlines() if x.startswith("| gmm_adaptive | a |"))
    line_b = next(x for x in md.splitlines() if x.startswith("| gmm_adaptive | b |"))
    assert "80.0" in line_a and "premise fails" in line_a
    assert "10.0" in line_b and "premise fails" not in line_b


def test_conformal_abstention_and_pu_weights_are_shown_per_row() -> None:
    summary = {"selection_bound": "lower", "q": 2, "mean_selected": 0.1, "abstention_rate": 0.9}
    ok = [rec("conformal_shapley", "a", {}, {"selection_summary": summary}, label="conformal_shapley+lower"),
          rec("robult", "a", {"rbf_mean_offdiag_w_overall": 0.63})]
    md = diagnostics_markdown(SimpleNamespace(ok=ok))
    assert "| conformal_shapley+lower | a | standard | lower | 2 | 0.1 | 90.0 | 1 |" in md
    assert "| robult | a | standard | 0.63 | **outside 0.05–0.5** | 1 |" in md


def test_no_section_without_those_methods() -> None:
    assert diagnostics_markdown(SimpleNamespace(ok=[rec("early_fusion", "a", {})])) == ""
