"""The claims the scorecard checks: each seed paper's main claims on the suites built for them, and the
known answers that synthetic_pid's construction fixes (sanity checks of the suite itself, listed apart).

A claim names the suite it reads; the claim suites (``benchmark/suites/claim_*.toml``) hold the ablation
rows and the data each claim needs, and ``*_matched`` twins hold the same rows at a matched parameter
budget, where each claim is checked again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd

from benchmark.claims import (
    RUN_KEYS,
    Claim,
    RunValues,
    Verdict,
    _test_accuracy,
    at_least,
    compare,
    condition_value,
    drop_from_clean,
    family_value,
    record_value,
)
from benchmark.records import RunRecord
from benchmark.results import Results

ROBULT = "Robult (papers/robult.md, specs/robult.md)"
DRO = "Distributionally robust multimodal learning (papers/dro-multimodal.md, specs/dro_multimodal.md)"
GMM = "GMM-guided adaptive loss (papers/related-abstracts.md, specs/gmm_adaptive_loss.md)"
CONFORMAL = "Conformal Shapley intervals (specs/conformal_shapley.md)"
KNOWN = "synthetic_pid's construction (datasets/synthetic_pid.py)"

#: Non-inferiority margins, stated with the claims they serve.
COVERAGE_MARGIN = 0.02
ACCURACY_MARGIN = 0.02


def _extra(*path: str) -> Callable[[RunRecord], float | None]:
    """A record's extra at ``path`` as a number (a list's mean over its non-missing entries)."""
    def of(r: RunRecord) -> float | None:
        v = r.extra(*path)
        if isinstance(v, list):
            v = [x for x in v if x is not None]
            return float(np.mean(v)) if v else None
        return float(v) if isinstance(v, (int, float)) else None
    return of


def removing_owner_costs_most(owner: str) -> RunValues:
    """Per run: the smallest accuracy with another modality removed minus the accuracy with ``owner``
    removed (positive when removing the owner costs the most)."""
    def values(results: Results) -> pd.Series:
        part = _test_accuracy(results)
        part = part[part["condition"].str.startswith("missing_modality[")]
        keys = RUN_KEYS
        own = part[part["condition"] == f"missing_modality[{owner}]"].groupby(keys)["value"].mean()
        others = part[part["condition"] != f"missing_modality[{owner}]"].groupby(keys)["value"].min()
        return (others - own).dropna()
    return values


def _two_component_share(r: RunRecord) -> float | None:
    share = _extra("extras", "gmm_fallback_share")(r)
    return None if share is None else 1.0 - share


def selection_vs(of: str) -> Callable[[RunRecord], float | None]:
    """conformal_shapley on the clean test split: accuracy of its own selection minus (``of="full"``) the
    model of all present modalities, or minus (``of="best_subset"``) the best fixed subset of the selected
    q's size (exhaustive: every coalition model's test accuracy, chosen on test data, so an upper bound)."""
    def value(r: RunRecord) -> float | None:
        extras = r.body.get("extras_test", {})
        versus = extras.get("selected_vs_full")
        if not versus:
            return None
        selected, full = versus["accuracy"]
        if of == "full":
            return selected - full
        summary, subsets = extras.get("selection_summary", {}), extras.get("coalition_accuracy")
        q = summary.get("q")
        if not subsets or q is None:
            return None
        same_size = [a for c, a in zip(subsets["columns"], subsets["accuracy"], strict=True)
                     if bin(int(c)).count("1") == q]
        return selected - max(same_size) if same_size else None
    return value


def coverage_minus_nominal(kind: str) -> Callable[[RunRecord], float | None]:
    """A run's mean coverage over modalities minus its intervals' nominal level (``marginal``: 1 − α;
    ``conditional``: 1 − α/q, the level the selection uses)."""
    def value(r: RunRecord) -> float | None:
        extras = r.body.get("extras_test", {})
        cov, nominal = extras.get(f"{kind}_coverage"), extras.get("selection_summary", {}).get(f"{kind}_nominal")
        if not cov or nominal is None:
            return None
        return float(np.mean(cov["coverage"])) - float(nominal)
    return value


def nll_gap(strong: str = "m0", weak: str = "m1") -> RunValues:
    """The modality gap as a probability-scale quantity: NLL with only the weak modality minus NLL with
    only the strong one (accuracy with the strong modality alone saturates on this data, so an accuracy
    gap would repeat the weak-modality test)."""
    def values(results: Results) -> pd.Series:
        weak_nll = condition_value(f"missing_pattern[{weak}]", "nll")(results)
        strong_nll = condition_value(f"missing_pattern[{strong}]", "nll")(results)
        return (weak_nll - strong_nll).dropna()
    return values


#: The synthetic_pid variants whose outcome the construction fixes (``known_answers.toml`` runs them; a
#: test checks the suite file holds exactly these).
KNOWN_VARIANTS: dict[str, dict[str, object]] = {
    "synergy": {"redundant": 0.0, "unique": 0.0, "synergy": 1.0, "noise": [0.3, 0.3, 0.3]},
    "redundancy": {"redundant": 1.0, "unique": 0.0, "synergy": 0.0},
    "unique_m0": {"redundant": 0.4, "unique": 0.6, "synergy": 0.0, "unique_owner": 0},
}


def _on(variant: str, check: Callable[[Results], Verdict]) -> Callable[[Results], Verdict]:
    """``check`` on the runs of one known-answer variant of synthetic_pid only (runs whose parameters
    include the variant's; a test may shrink ``n`` or add others)."""
    params = KNOWN_VARIANTS[variant]

    def on_variant(results: Results) -> Verdict:
        keep = [r for r in results.records if r.spec.dataset == "synthetic_pid"
                and all(r.spec.dataset_params.get(k) == v for k, v in params.items())]
        ids = {r.run_id for r in keep}
        return check(replace(results, records=keep, table=results.table[results.table["run_id"].isin(ids)]))
    return on_variant


CLAIMS: list[Claim] = [
    # Robult -------------------------------------------------------------------------------------------
    Claim("robult.soft_pu", "robult", ROBULT,
          "With 5% of the labels, the soft-PU contrastive term beats supervised contrastive on the labelled "
          "samples only (clean accuracy).", "claim_robult",
          compare("robult", "robult+supcon", condition_value("clean"), "clean accuracy", "labels[0.05]"),
          matched_suite="claim_robult_matched"),
    Claim("robult.l_rec", "robult", ROBULT,
          "Without the reconstruction loss L_rec, Robult loses accuracy with one modality missing.",
          "claim_robult",
          compare("robult", "robult+no_rec", family_value("missing"), "accuracy with one modality missing",
                  "labels[0.05]"), matched_suite="claim_robult_matched"),
    Claim("robult.missing", "robult", ROBULT,
          "Robult (modality dropout off, as the paper trains) keeps more accuracy than late fusion when "
          "modalities are missing at test time.", "full",
          compare("robult", "late_fusion", family_value("missing"), "mean accuracy over the missing-modality "
                  "conditions"), matched_suite="full_matched"),
    Claim("robult.missing_dropout", "robult", ROBULT,
          "Robult with modality dropout keeps more accuracy than late fusion when modalities are missing.",
          "full",
          compare("robult+dropout", "late_fusion", family_value("missing"),
                  "mean accuracy over the missing-modality conditions"), matched_suite="full_matched"),
    # DRO ----------------------------------------------------------------------------------------------
    Claim("mm_dro.vs_erm", "mm_dro", DRO,
          "Modality-aware DRO's robust accuracy (worst case over the covariate-shift grid) beats the same "
          "network trained by ERM (ρ = 0).", "full",
          compare("mm_dro", "mm_dro+erm", family_value("covariate", "worst"), "worst covariate-shift accuracy"),
          matched_suite="full_matched"),
    Claim("mm_dro.vs_ef_dro_matched", "mm_dro", DRO,
          "Modality-aware DRO's robust accuracy beats early-fusion DRO at a matched budget (ρ_EF = mm_dro's "
          "mean B on the same data and seed).", "claim_dro",
          compare("mm_dro", "ef_dro+matched", family_value("covariate", "worst"), "worst covariate-shift accuracy"),
          matched_suite="claim_dro_matched"),
    Claim("mm_dro.vs_ef_dro_matched_dropout", "mm_dro", DRO,
          "With modality dropout in both, modality-aware DRO's robust accuracy beats matched-budget "
          "early-fusion DRO.", "claim_dro",
          compare("mm_dro+dropout", "ef_dro+matched+dropout", family_value("covariate", "worst"),
                  "worst covariate-shift accuracy"), matched_suite="claim_dro_matched"),
    # GMM ----------------------------------------------------------------------------------------------
    Claim("gmm.bimodal", "gmm_adaptive", GMM,
          "Where one modality dominates, the per-sample modality gap is bimodal: BIC prefers two components "
          "in most of the GMM fits.", "claim_gmm",
          at_least("gmm_adaptive", record_value(lambda r: _two_component_share(r)), 0.5,
                   "share of GMM fits where BIC prefers two components", scale=1.0, effect_unit=""),
          matched_suite="claim_gmm_matched"),
    Claim("gmm.gap", "gmm_adaptive", GMM,
          "Where one modality dominates, the GMM-guided loss shrinks the modality gap (NLL with the weak "
          "modality alone minus NLL with the strong one) against early fusion.", "claim_gmm",
          compare("gmm_adaptive", "early_fusion", nll_gap(), "NLL gap", lower_is_better=True),
          matched_suite="claim_gmm_matched"),
    Claim("gmm.weak", "gmm_adaptive", GMM,
          "Where one modality dominates, the weak modality alone is more accurate after GMM-guided training "
          "than after early fusion.", "claim_gmm",
          compare("gmm_adaptive", "early_fusion", condition_value("missing_pattern[m1]"),
                  "accuracy with the weak modality alone"), matched_suite="claim_gmm_matched"),
    # Conformal Shapley ---------------------------------------------------------------------------------
    Claim("conformal.near_full", "conformal_shapley", CONFORMAL,
          f"Accuracy at the selected q is within {ACCURACY_MARGIN * 100:g} points of the full model's "
          "(non-inferiority).", "full",
          at_least("conformal_shapley", record_value(selection_vs("full")), 0.0,
                   "accuracy at the selected q − the full model's", margin=ACCURACY_MARGIN),
          matched_suite="full_matched"),
    Claim("conformal.best_subset", "conformal_shapley", CONFORMAL,
          f"The selected modalities are within {ACCURACY_MARGIN * 100:g} points of the best fixed subset of "
          "the same size (exhaustive, chosen on test data) (non-inferiority).", "full",
          at_least("conformal_shapley", record_value(selection_vs("best_subset")), 0.0,
                   "accuracy at the selected q − the best subset of size q", margin=ACCURACY_MARGIN),
          matched_suite="full_matched"),
    Claim("conformal.marginal_coverage", "conformal_shapley", CONFORMAL,
          f"The marginal intervals of the modality Shapley values cover the test samples at no less than their "
          f"nominal level 1 − α minus {COVERAGE_MARGIN:g} (non-inferiority; one value per run, the mean over "
          "modalities).", "full",
          at_least("conformal_shapley", record_value(coverage_minus_nominal("marginal")), 0.0,
                   "marginal coverage − nominal", unit="runs", margin=COVERAGE_MARGIN, scale=1.0, effect_unit=""),
          matched_suite="full_matched"),
    Claim("conformal.conditional_coverage", "conformal_shapley", CONFORMAL,
          f"The conditional intervals (at the selection's level 1 − α/q) cover the test samples at no less "
          f"than that level minus {COVERAGE_MARGIN:g} (non-inferiority; one value per run).", "full",
          at_least("conformal_shapley", record_value(coverage_minus_nominal("conditional")), 0.0,
                   "conditional coverage − nominal", unit="runs", margin=COVERAGE_MARGIN, scale=1.0,
                   effect_unit=""),
          matched_suite="full_matched"),
    Claim("conformal.informative_first", "conformal_shapley", CONFORMAL,
          "When one modality alone carries the label (m0), it is selected first in at least 90% of test "
          "samples.", "claim_conformal",
          at_least("conformal_shapley", record_value(_extra("extras_test", "first_selected", "m0")), 0.9,
                   "share of test samples with m0 selected first", scale=1.0, effect_unit=""),
          matched_suite="claim_conformal_matched"),
    # Known answers --------------------------------------------------------------------------------------
    Claim("known.synergy_late", "late_fusion", KNOWN,
          "Pure synergy (redundant 0, unique 0, synergy 1; 4 classes): late fusion stays near chance "
          "(at most 35%).", "known_answers",
          _on("synergy", at_least("late_fusion", condition_value("clean"), 0.35, "clean accuracy", at_most=True)),
          kind="known answer"),
    Claim("known.synergy_early", "early_fusion", KNOWN,
          "Pure synergy: early fusion does not stay near chance (at least 50%).", "known_answers",
          _on("synergy", at_least("early_fusion", condition_value("clean"), 0.5, "clean accuracy")),
          kind="known answer"),
    Claim("known.redundancy", "early_fusion", KNOWN,
          "Pure redundancy: removing any one modality costs a method trained under missingness little "
          "(at most 5 points, worst modality).", "known_answers",
          _on("redundancy", at_least("early_fusion", drop_from_clean("missing", "worst"), 0.05,
                                     "accuracy lost with the worst modality removed", "train_missing[0.3]",
                                     at_most=True)),
          kind="known answer"),
    Claim("known.unique_owner", "early_fusion", KNOWN,
          "Label unique to m0: removing m0 costs more than removing any other modality.", "known_answers",
          _on("unique_m0", at_least("early_fusion", removing_owner_costs_most("m0"), 0.0,
                                    "min accuracy with another modality removed − accuracy with m0 removed")),
          kind="known answer"),
]
