"""Conformal Shapley intervals and modality selection (Chandy et al.; the author draft "Shapley Value-Based
Modality Selection with Conditional Optimality Guarantee" and its code ``shap_mml``; arXiv 2602.00171).

One model per coalition of modalities is trained on a training part I1 of the training split; on the
calibration part I2 every point gets pointwise modality Shapley values of the loss reduction over the
trivial predictor; split conformal gives marginal intervals and p-values per modality; a kernel quantile
regression of the Shapley values on a reduced representation of the input gives conditional intervals,
and a test sample is predicted by the coalition of its (present) modalities with the largest positive
lower bounds, at most q of them.

The math sits in shared blocks (part of this method's source hash): ``_shapley`` (Shapley values, the
selection rule), ``_conformal`` (conformal intervals, p-values, the kernel quantile regression) and
``_coalitions`` (the coalition models); this file is the hyperparameters and the method's glue.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from benchmark.contracts import DatasetInfo, Method, Split, TrainContext
from benchmark.hparams import Choice, Each, IntUniform, LogUniform, Range, hparam
from benchmark.seeding import keyed_rng

from ._blocks import zero_fill
from ._coalitions import CoalitionModels
from ._conformal import (
    ConditionalQuantiles,
    NystroemRBF,
    ReducedInput,
    conformal_pvalue,
    marginal_interval,
    t_test_pvalue,
    tune_lambdas,
)
from ._shapley import exact_shapley, permutation_coalitions, permutation_shapley, select_modalities

OPEN_UNIT = Range(0, 1, low_open=True, high_open=True)
POSITIVE = Range(0, None, low_open=True)
#: Largest M for which the test record holds every coalition model's accuracy (2^M columns).
COALITION_ACCURACY_MAX_M = 6


@dataclass(frozen=True)
class ConformalShapleyHparams:
    alpha: float = hparam(0.05, source="SRC", allowed=Range(0, 1, low_open=True),
                          doc="miscoverage level (code default 0.05); 1 makes both conditional levels of q = 1 the "
                              "median")
    calibration_fraction: float = hparam(0.5, source="SRC", allowed=OPEN_UNIT,
                                         doc="share of the labelled training split used as the calibration part I2 "
                                             "(draft and code: 1/2)")
    q: int | None = hparam(None, source="INF", allowed=Range(0, None),
                           doc="maximum number of modalities selected by predict_proba; the paper sweeps q = 0..M "
                               "and plots the path; None takes the smallest q with the best validation accuracy "
                               "on that path (M when selection_path is off)")
    selection_bound: str = hparam("upper", Choice(("lower", "upper")), source="SRC", allowed=("lower", "upper"),
                                  doc='which end of the conditional interval ranks the modalities: "upper" (the '
                                      'authors\' code: conditional_calibrate fits only tau = 1 - alpha/(2q) and '
                                      'selects on it; it made the paper\'s plots) or "lower" (the draft\'s theory, '
                                      'tau = alpha/(2q); with noisy pointwise log-loss Shapley values it abstains '
                                      'almost always)')
    coalition_models: str = hparam("per_coalition", source="SRC/INF", allowed=("per_coalition", "masked_surrogate"),
                                   doc='"per_coalition": one model per subset [SRC]; "masked_surrogate": the fast '
                                       'mode, one model trained with random modality masking, coalitions evaluated '
                                       'by masking [INF]')
    shapley_estimator: str = hparam("auto", source="INF", allowed=("auto", "exact", "permutation"),
                                    doc='"auto" (exact up to exact_max_modalities, otherwise permutation sampling '
                                        'with lazily trained coalitions), "exact" or "permutation"')
    exact_max_modalities: int = hparam(6, source="INF", allowed=Range(0, None),
                                       doc='largest M for exact enumeration under "auto" (spec: M <= 6)')
    n_permutations: int = hparam(32, source="INF", allowed=Range(1, None),
                                 doc="permutations T of the permutation estimator")
    surrogate_keep_prob: float = hparam(0.5, source="INF", allowed=Range(0, 1, low_open=True),
                                        doc="masked-surrogate training: probability that a present modality is kept "
                                            "in a training sample")
    omega_dim: int = hparam(2, IntUniform(1, 8), source="SRC", allowed=Range(1, None),
                            doc="the PCA dimension of Omega (centred SVD of the input) in the MNIST run")
    omega_whiten: bool = hparam(False, source="INF",
                                doc="divide each Omega component by its standard deviation (the draft and code do "
                                    "not)")
    lambda1: float = hparam(1e-2, LogUniform(1e-3, 1.0), source="SRC", allowed=POSITIVE,
                            doc="penalty of the kernel term (the MNIST run fixes it to 1e-2)")
    lambda2: float = hparam(1e-2, LogUniform(1e-3, 1.0), source="SRC", allowed=POSITIVE,
                            doc="penalty of the Omega term (the MNIST run fixes it to 1e-2)")
    tune_lambdas: bool = hparam(False, source="SRC",
                                doc="tune (lambda1, lambda2) by K-fold CV on I2 over lambda_grid (off: the MNIST "
                                    "setting)")
    lambda_grid: tuple[float, ...] = hparam((1e-3, 1e-2, 1e-1, 1.0), source="SRC", allowed=Each(POSITIVE),
                                            doc="the grid of both lambdas")
    cv_folds: int = hparam(5, source="SRC", allowed=Range(2, None),
                           doc="folds of the lambda CV (the draft says 5, the code 3)")
    kernel_jitter: float = hparam(1e-2, source="SRC", allowed=Range(0, None),
                                  doc="jitter added to the kernel matrix (here the landmark kernel of the Nystroem "
                                      "map)")
    nystroem_components: int = hparam(50, source="INF", allowed=Range(1, None),
                                      doc="Nystroem landmarks (calibration points) of the kernel term; >= n_cal "
                                          "gives the representer span")
    qr_intercept: bool = hparam(True, source="INF",
                                doc="unpenalised intercept in the quantile regression (without it, heavy "
                                    "regularisation shrinks h to 0 instead of to the marginal quantile)")
    selection_path: bool = hparam(True, source="INF",
                                  doc="also fit the levels of every q in 1..M on I2 and record the validation "
                                      "selection path")
    lower_rank: str = hparam("ceil", source="SRC", allowed=("ceil", "floor"),
                             doc='ranks of Algorithm 1: "ceil" (draft and code) or "floor" (exact >= 1 - alpha '
                                 'coverage)')
    clamp_upper: bool = hparam(False, source="SRC",
                               doc="the code clamps u to n_cal; False gives +inf when u > n_cal, as the guarantee "
                                   "needs")
    clip: float = hparam(1e-7, source="SRC", allowed=Range(0, 1, low_open=True),
                         doc="probabilities are clipped to [clip, 1] before the log loss")


class ConformalShapley(Method):
    """Conformal Shapley intervals and Shapley-based modality selection (Chandy et al.).

    Fit: the labelled training split is split at random (keyed on the seed) into I1 (training) and I2
    (calibration; ``calibration_fraction``). The validation split is used for early stopping of the coalition
    models and for the validation diagnostics only, never for calibration. Per coalition S (the empty set is
    the class frequencies on I1) a model mu_S is trained on I1 with the modalities outside S zeroed; on I2
    val_i(S) = l(y_i, mu_empty) - l(y_i, mu_S(x_i)) with the log loss, and the pointwise Shapley values
    phi_j^i follow exactly (M <= 6) or by permutation sampling. Per modality: the split-conformal interval,
    the one-sided t-test and the conformal p-value; for every level tau in {alpha/2q, 1 - alpha/2q} a kernel
    quantile regression h_j^tau(Omega(x)) (see ``fit_kernel_quantile`` for how it relates to the paper's RKHS
    problem; the test point is not included in the fit, as in the code). Predict: rank the present modalities
    by h_j^tau(x) at the level of ``selection_bound`` (default the upper one, tau = 1 - alpha/2q, as the
    authors' ``conditional_calibrate`` does; "lower", tau = alpha/2q, is the theory's variant), keep the
    positive ones, take the top min(q, #positive) and predict with that coalition's model (the trivial
    predictor when none is selected: an abstention).

    Hyperparameters: see the ``ConformalShapleyHparams`` fields (doc; [SRC]: from the draft or the authors'
    code; [INF]: reconstructed, the spec's default). As they now stand:

    - [SRC] alpha 0.05, calibration_fraction 0.5, selection_bound "upper" (the code; "lower" = the theory),
      coalition_models "per_coalition", omega_dim 2, lambda1 = lambda2 = 1e-2 untuned (the MNIST run),
      lambda_grid / cv_folds of the optional CV, kernel_jitter 1e-2, lower_rank "ceil", clamp_upper False
      (+inf when u > n_cal, as the guarantee needs; the code clamps), clip 1e-7.
    - [INF] q None (the smallest q with the best validation accuracy on the selection path), shapley_estimator
      "auto" (exact up to exact_max_modalities = 6, permutation sampling with n_permutations = 32 above),
      the masked_surrogate mode and its surrogate_keep_prob, omega_whiten False, nystroem_components 50,
      qr_intercept True, selection_path True.

    Other [INF] parts without a switch: the coalition learner is the early_fusion method's network with the
    shared budget (the paper's learner is arbitrary), the validation split decides early stopping (per
    coalition, on the mean log-likelihood of the labelled validation samples, the benchmark's shared criterion;
    the authors' MNIST code trains one epoch per coalition, no early stopping), Omega is computed from the
    zero-filled (= training-mean imputed: the data are standardised) concatenated inputs, one set of Nystroem
    landmarks serves every modality and level, the squared RKHS and ridge norms are replaced by l1 norms of the
    same coefficients (``fit_kernel_quantile``), the selection ranks by the one fitted level (quantile crossing
    is not sorted out there; the recorded intervals are sorted), the lambda CV uses the draft's objective (the
    mean selected Shapley mass), and missing modalities at test time are handled by restricting the candidates
    (no Mondrian calibration per missingness pattern).

    ``extras()`` records the marginal intervals and p-values, the validation coverage (marginal and
    conditional) and the validation selection path (accuracy against q), the bound used, and the selected
    coalitions of the most recent and the largest ``predict_proba`` call; ``evaluate_extras(x, mask)`` returns
    the per-sample arrays and label-free summaries from which a runner holding the test labels scores the
    test-split selection path, the selected-vs-full and every-coalition accuracies, and the coverage (its
    docstring lists the record fields)."""

    name = "conformal_shapley"
    Hparams = ConformalShapleyHparams

    def __init__(self, info: DatasetInfo, hparams: ConformalShapleyHparams | None = None) -> None:
        super().__init__(info, hparams)
        hp = self.hparams
        self.m = len(info.modalities)
        #: q given, or M until ``fit`` picks it on the validation selection path (q=None, selection_path=True)
        self.q_fixed = self.m if hp.q is None else max(0, min(int(hp.q), self.m))
        self.q = self.q_fixed
        self.estimator = hp.shapley_estimator
        if self.estimator == "auto":
            self.estimator = "exact" if self.m <= hp.exact_max_modalities else "permutation"
        self.device = torch.device("cpu")
        self.models: CoalitionModels | None = None
        self._last_call: dict[str, Any] | None = None
        self._largest_call: dict[str, Any] | None = None
        self._diagnostics: dict[str, Any] = {}

    # -- Shapley values ------------------------------------------------------------------------------

    def _flat(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        n = next(iter(x.values())).shape[0]
        return torch.cat([x[m.name].reshape(n, -1) for m in self.info.modalities], dim=1)

    def _values(self, x, mask, y: torch.Tensor, coalitions: list[int]) -> dict[int, np.ndarray]:
        """val_i(S) = l(y_i, mu_empty) - l(y_i, mu_S(x_i)) for each coalition (log loss, clipped)."""
        logp = self.models.log_proba(x, mask, [0, *coalitions])
        picked = torch.gather(logp, 2, y.view(1, -1, 1).expand(logp.shape[0], -1, 1))[..., 0]
        picked = picked.double().cpu().numpy()
        return {int(b): picked[i + 1] - picked[0] for i, b in enumerate(coalitions)}

    def _shapley(self, value_of: Mapping[int, np.ndarray], n: int) -> np.ndarray:
        if self.estimator == "exact":
            table = np.zeros((n, 1 << self.m))
            for bits, v in value_of.items():
                table[:, bits] = v
            return exact_shapley(table)
        return permutation_shapley(value_of, self.perms, n)

    def _coalitions_for_shapley(self) -> list[int]:
        if self.estimator == "exact":
            return list(range(1, 1 << self.m))
        return permutation_coalitions(self.perms)

    # -- conditional quantiles -----------------------------------------------------------------------

    def _omega_of(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> np.ndarray:
        return self.omega(self._flat(zero_fill(x, mask)).double().cpu().numpy())

    def _bounds(self, q: int, omega: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.quantiles.bounds(q, omega)

    def _select(self, q: int, omega: np.ndarray, available: np.ndarray) -> np.ndarray:
        """Selected coalition bits per sample: ranked by h_j^{alpha/2q}(x) (or h_j^{1-alpha/2q} with
        selection_bound="upper"), positive scores only, present modalities only, at most q."""
        if q == 0:
            return np.zeros(len(omega), dtype=np.int64)
        scores = self.quantiles.predict(q, self.hparams.selection_bound, omega)
        return select_modalities(scores, available, q)

    def _tune_lambdas(self, omega_cal: np.ndarray) -> tuple[tuple[float, float], list[dict[str, float]]]:
        """K-fold CV on I2 (folds keyed on the seed) at the selection level of q (M when q is chosen later)."""
        hp = self.hparams
        q = max(self.q_fixed, 1)
        folds = np.array_split(keyed_rng("conformal_shapley", "cv", self.seed).permutation(len(self.phi_cal)),
                               hp.cv_folds)
        a = hp.alpha / (2 * q)
        tau = a if hp.selection_bound == "lower" else 1.0 - a
        return tune_lambdas(self.nystroem(omega_cal), omega_cal, self.phi_cal, tau, q, hp.lambda_grid, folds,
                            (hp.lambda1, hp.lambda2), hp.qr_intercept)

    # -- fit -----------------------------------------------------------------------------------------

    def fit(self, train: Split, val: Split, ctx: TrainContext) -> None:
        hp = self.hparams
        self.device, self.ctx, self.seed = ctx.device, ctx, ctx.seed
        labeled = np.flatnonzero(train.labeled.cpu().numpy())
        perm = keyed_rng("conformal_shapley", "split", ctx.seed).permutation(labeled)
        n_cal = int(round(len(perm) * hp.calibration_fraction))
        if n_cal < 2 or n_cal >= len(perm):
            raise ValueError(f"cannot split {len(perm)} labelled training samples into a training and a "
                             f"calibration part of fraction {hp.calibration_fraction}")
        cal_idx = np.sort(perm[:n_cal])
        fit_idx = np.setdiff1d(np.arange(len(train)), cal_idx)  # I1: the rest, unlabelled samples included
        fit_part = train.subset(torch.as_tensor(fit_idx))
        cal = train.subset(torch.as_tensor(cal_idx))
        self.calibration_ids, self.fit_part_ids = cal.ids, fit_part.ids
        self._val_split = val

        y1 = fit_part.y[fit_part.labeled]
        counts = torch.bincount(y1.cpu(), minlength=self.info.n_classes).to(torch.float32)
        trivial = (counts / counts.sum()).to(self.device)
        self.perms = np.stack([keyed_rng("conformal_shapley", "perm", ctx.seed, t).permutation(self.m)
                               for t in range(hp.n_permutations)])

        coalitions = self._coalitions_for_shapley()
        self.models = CoalitionModels(self.info, fit_part, val, trivial, ctx, hp.clip)
        if hp.coalition_models == "masked_surrogate":
            self.models.train_surrogate(hp.surrogate_keep_prob, ctx)
        else:
            self.models.train_bank(coalitions, ctx)
        n_trained_at_fit = len(self.models.where)

        # Pointwise Shapley values on I2, marginal intervals and p-values.
        self.phi_cal = self._shapley(self._values(cal.x, cal.mask, cal.y, coalitions), n_cal)
        self.intervals = [marginal_interval(self.phi_cal[:, j], hp.alpha, hp.lower_rank, hp.clamp_upper)
                          for j in range(self.m)]

        # Conditional quantiles on Omega(x).
        self.omega = ReducedInput(self._flat(cal.x).double().cpu().numpy(), hp.omega_dim, hp.omega_whiten)
        omega_cal = self.omega(self._flat(cal.x).double().cpu().numpy())
        k = min(hp.nystroem_components, n_cal)
        landmarks = keyed_rng("conformal_shapley", "nystroem", ctx.seed).choice(n_cal, size=k, replace=False)
        self.nystroem = NystroemRBF(omega_cal[np.sort(landmarks)], 1.0 / omega_cal.shape[1], hp.kernel_jitter)
        self.lambdas, cv_table = (hp.lambda1, hp.lambda2), None
        if hp.tune_lambdas and self.q_fixed > 0:
            self.lambdas, cv_table = self._tune_lambdas(omega_cal)
        self.quantiles = ConditionalQuantiles(self.nystroem, omega_cal, self.phi_cal, hp.alpha, self.lambdas,
                                              hp.qr_intercept)
        self.path_qs = list(range(self.m + 1)) if hp.selection_path else [0, self.q_fixed]
        self._diagnostics = self._validation_diagnostics(val, cv_table)
        self._diagnostics["coalitions_trained_at_fit"] = n_trained_at_fit
        self._diagnostics["n_fit_part"] = len(fit_idx)
        if hp.coalition_models == "per_coalition":
            self._diagnostics["coalitions_active_per_epoch"] = self.models.active_log

    @torch.no_grad()
    def _validation_diagnostics(self, val: Split, cv_table) -> dict[str, Any]:
        """Coverage and selection path on the validation split (it has labels; it was also used for early
        stopping of the coalition models, so these are validation, not test, quantities)."""
        sel = val.labeled
        vx = {k: v[sel] for k, v in val.x.items()}
        vmask, vy = val.mask[sel], val.y[sel]
        n = int(sel.sum())
        out: dict[str, Any] = {}
        if n == 0:
            return out
        phi = self._shapley(self._values(vx, vmask, vy, self._coalitions_for_shapley()), n)
        lo = np.array([iv[0] for iv in self.intervals])
        hi = np.array([iv[1] for iv in self.intervals])
        out["validation_marginal_coverage"] = ((phi >= lo) & (phi <= hi)).mean(axis=0).tolist()
        omega = self._omega_of(vx, vmask)
        available = vmask.cpu().numpy()
        path = []
        y_np = vy.cpu().numpy()
        for q in sorted(set(self.path_qs)):
            bits = self._select(q, omega, available)
            pred = self.models.proba_selected(vx, vmask, bits).argmax(dim=1).cpu().numpy()
            chosen = (bits[:, None] >> np.arange(self.m)[None, :]) & 1
            path.append({"q": q, "accuracy": float((pred == y_np).mean()), "mean_size": float(chosen.sum(1).mean()),
                         "modality_counts": chosen.sum(0).astype(int).tolist()})
        out["validation_selection_path"] = path
        if self.hparams.q is None and self.hparams.selection_path:
            best = max(r["accuracy"] for r in path)  # the smallest q with the best validation accuracy
            self.q = min(r["q"] for r in path if r["accuracy"] >= best)
        else:
            self.q = self.q_fixed
        if self.q > 0:
            clo, chi = self._bounds(self.q, omega)
            out["validation_conditional_coverage"] = ((phi >= clo) & (phi <= chi)).mean(axis=0).tolist()
        if cv_table is not None:
            out["lambda_cv"] = cv_table
        return out

    # -- predict -------------------------------------------------------------------------------------

    @torch.no_grad()
    def predict_proba(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        x = zero_fill(x, mask)
        omega = self._omega_of(x, mask)
        bits = self._select(self.q, omega, mask.cpu().numpy())
        proba = self.models.proba_selected(x, mask, bits)
        record = {"n": int(len(bits)), "selected_bits": bits.astype(int).tolist()}
        self._last_call = record
        # the most recent of the largest calls: in the runner, the clean test split's timed calls come last
        if self._largest_call is None or record["n"] >= self._largest_call["n"]:
            self._largest_call = record
        return proba

    def _first_ranked(self, omega: np.ndarray, available: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
        """The level q_r = max(q, 1) whose scores rank the modalities, and per sample the top-scoring present
        modality (-1 when none is present) and whether its score is positive (then it is the first selected)."""
        q_rank = max(self.q, 1)
        scores = self.quantiles.predict(q_rank, self.hparams.selection_bound, omega)
        masked = np.where(available, scores, -np.inf)
        top = np.argmax(masked, axis=1)
        top_score = masked[np.arange(len(top)), top]
        top = np.where(np.isfinite(top_score), top, -1)
        return q_rank, top, top_score > 0

    @torch.no_grad()
    def evaluate_extras(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> dict[str, dict[str, Any]]:
        """Per-sample arrays a runner with the labels y scores (the method never sees them), and label-free
        summaries it records as given. The runner calls this on the clean test split and stores the result as
        the record's ``extras_test``; a coalition is a bit mask over ``extras["modalities"]`` (bit j set <=>
        modality j in it; 0 the trivial predictor, 2^M - 1 all modalities).

        Kind "accuracy_by_column" (``pred`` (n, C) predicted classes; recorded: ``columns``, ``accuracy``):

        - ``selection_path``: column = q in 0..M (the selection path, accuracy against q);
        - ``selected_vs_full``: columns ``["selected", "full"]``: the prediction at the selected q (the
          method's own ``predict_proba``) and the model of the coalition of all present modalities;
        - ``coalition_accuracy`` (only when M <= 6 and every coalition has a model): column = the coalition's
          bits 0..2^M - 1, each coalition model's prediction for every sample (the best fixed subset of size
          q is the best column with q bits set).

        Kind "interval_coverage" (``value_by_label`` (n, K, M) the Shapley values the sample would have with
        label k, ``lower`` / ``upper`` (n, M); recorded: ``columns`` (modality names), ``coverage``):

        - ``marginal_coverage``: the split-conformal intervals, nominal level 1 - alpha;
        - ``conditional_coverage``: [h_j^{alpha/2q}(x), h_j^{1-alpha/2q}(x)] sorted, at the selection's q
          (q = 1 when q = 0), nominal level 1 - alpha/q.

        Kind "label_free" (``values``, recorded as given):

        - ``selection_summary``: ``selection_bound`` ("upper" or "lower"), ``q`` (the selected q),
          ``mean_selected`` (mean number of modalities selected), ``abstention_rate`` (share of samples with
          nothing selected: predicted by the trivial predictor), ``modality_selected_share`` (per modality
          name, share of samples selecting it), ``path`` (per q in 0..M: ``q``, ``mean_selected``,
          ``abstention_rate``), ``rank_q`` (the q whose level ranks: max(q, 1)), ``marginal_nominal``
          (1 - alpha), ``conditional_nominal`` (1 - alpha/rank_q, the conditional intervals' level);
        - ``first_ranked``: per modality name, the share of samples whose top-scoring present modality (at
          rank_q's level of ``selection_bound``, sign ignored) it is;
        - ``first_selected``: per modality name and ``"none"``, the share of samples whose first selected
          modality (the top one, when its score is positive and q >= 1) it is; sums to 1, and ``"none"`` is
          the abstention rate when q >= 1."""
        hp = self.hparams
        x = zero_fill(x, mask)
        n = mask.shape[0]
        names = list(self.info.modality_names)
        omega = self._omega_of(x, mask)
        available = mask.cpu().numpy().astype(bool)
        avail_bits = (available.astype(np.int64) << np.arange(self.m)).sum(axis=1)
        qs = sorted(set(self.path_qs))
        bits_by_q = {q: self._select(q, omega, available) for q in qs}

        def predicted(bits: np.ndarray) -> np.ndarray:
            return self.models.proba_selected(x, mask, bits).argmax(1).cpu().numpy()

        preds = np.stack([predicted(bits_by_q[q]) for q in qs], axis=1)
        selected = preds[:, qs.index(self.q)]
        coalitions = self._coalitions_for_shapley()
        every = list(range(1 << self.m))
        exhaustive = self.m <= COALITION_ACCURACY_MAX_M and (
            self.models.surrogate is not None or set(every[1:]) <= set(self.models.where))
        wanted = every if exhaustive else [0, *coalitions]
        logp_all = self.models.log_proba(x, mask, wanted).double().cpu().numpy()  # (C, n, K)
        logp = logp_all[[wanted.index(b) for b in [0, *coalitions]]]
        by_label = np.zeros((n, self.info.n_classes, self.m))
        for k in range(self.info.n_classes):
            values = {int(b): logp[i + 1, :, k] - logp[0, :, k] for i, b in enumerate(coalitions)}
            by_label[:, k, :] = self._shapley(values, n)
        lo = np.broadcast_to(np.array([iv[0] for iv in self.intervals]), (n, self.m)).copy()
        hi = np.broadcast_to(np.array([iv[1] for iv in self.intervals]), (n, self.m)).copy()
        q_rank, top, positive = self._first_ranked(omega, available)
        clo, chi = self._bounds(q_rank, omega)

        def size(bits: np.ndarray) -> np.ndarray:
            return ((bits[:, None] >> np.arange(self.m)[None, :]) & 1).sum(axis=1)

        chosen = (bits_by_q[self.q][:, None] >> np.arange(self.m)[None, :]) & 1
        first = np.where(positive & (self.q > 0), top, -1)
        summary = {
            "selection_bound": hp.selection_bound,
            "q": int(self.q),
            "mean_selected": float(size(bits_by_q[self.q]).mean()),
            "abstention_rate": float((bits_by_q[self.q] == 0).mean()),
            "modality_selected_share": dict(zip(names, chosen.mean(axis=0).tolist(), strict=True)),
            "path": [{"q": int(q), "mean_selected": float(size(bits_by_q[q]).mean()),
                      "abstention_rate": float((bits_by_q[q] == 0).mean())} for q in qs],
            "rank_q": int(q_rank),
            "marginal_nominal": 1.0 - hp.alpha,
            "conditional_nominal": 1.0 - hp.alpha / q_rank,
        }
        out = {"selection_path": {"kind": "accuracy_by_column", "columns": qs, "pred": preds},
               "selected_vs_full": {"kind": "accuracy_by_column", "columns": ["selected", "full"],
                                    "pred": np.stack([selected, predicted(avail_bits)], axis=1)},
               "marginal_coverage": {"kind": "interval_coverage", "columns": names,
                                     "value_by_label": by_label, "lower": lo, "upper": hi},
               "conditional_coverage": {"kind": "interval_coverage", "columns": names,
                                        "value_by_label": by_label, "lower": clo, "upper": chi},
               "selection_summary": {"kind": "label_free", "values": summary},
               "first_ranked": {"kind": "label_free",
                                "values": {name: float((top == j).mean()) for j, name in enumerate(names)}},
               "first_selected": {"kind": "label_free",
                                  "values": {**{name: float((first == j).mean()) for j, name in enumerate(names)},
                                             "none": float((first == -1).mean())}}}
        if exhaustive:
            out["coalition_accuracy"] = {"kind": "accuracy_by_column", "columns": every,
                                         "pred": logp_all.argmax(axis=2).T}
        return out

    # -- record --------------------------------------------------------------------------------------

    def extras(self) -> dict[str, Any]:
        if not hasattr(self, "phi_cal"):
            return {}

        def num(v: float) -> float | None:
            return None if not math.isfinite(v) else round(float(v), 6)

        def calls(rec: dict[str, Any] | None) -> dict[str, Any] | None:
            if rec is None:
                return None
            bits = np.asarray(rec["selected_bits"], dtype=np.int64)
            chosen = (bits[:, None] >> np.arange(self.m)[None, :]) & 1 if len(bits) else np.zeros((0, self.m), int)
            return {**rec, "modality_counts": chosen.sum(0).astype(int).tolist(),
                    "mean_size": float(chosen.sum(1).mean()) if len(bits) else 0.0}

        names = list(self.info.modality_names)
        diag = self._diagnostics

        def rounded(obj):
            if isinstance(obj, float):
                return num(obj)
            if isinstance(obj, list):
                return [rounded(v) for v in obj]
            if isinstance(obj, dict):
                return {k: rounded(v) for k, v in obj.items()}
            return obj

        return rounded({
            "modalities": names,
            "coalition_models": self.hparams.coalition_models,
            "shapley_estimator": self.estimator,
            "selection_bound": self.hparams.selection_bound,
            "q": self.q,
            "q_rule": ("given" if self.hparams.q is not None else
                       "best validation accuracy on the selection path" if self.hparams.selection_path else "M"),
            "alpha": self.hparams.alpha,
            "lambdas": list(self.lambdas),
            "calibration": "random part of the labelled training split (I2); validation split not used to calibrate",
            "n_calibration": int(len(self.phi_cal)),
            "n_fit_part": diag.get("n_fit_part"),
            "coalitions_trained_at_fit": diag.get("coalitions_trained_at_fit"),
            "coalitions_trained_lazily": int(self.models.n_lazy),
            "marginal_intervals": [[num(lo), num(hi)] for lo, hi in self.intervals],
            "mean_shapley": self.phi_cal.mean(axis=0).tolist(),
            "t_test_pvalues": [t_test_pvalue(self.phi_cal[:, j]) for j in range(self.m)],
            "conformal_pvalues": [conformal_pvalue(self.phi_cal[:, j]) for j in range(self.m)],
            **{k: v for k, v in diag.items() if k not in ("n_fit_part", "coalitions_trained_at_fit")},
            "last_predict_call": calls(self._last_call),
            "largest_predict_call": calls(self._largest_call),
        })
