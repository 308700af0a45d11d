"""Shared DRO math for ``mm_dro`` and ``ef_dro`` (spec: shared/specs/dro_multimodal.md, section 2).

- :func:`modality_budget`: the modality-aware budget B = sum_k rho_k + 2 sum_{i<j} |gamma_ij| sqrt(rho_i rho_j) [SRC].
- :func:`robust_risk`: the three training objectives behind one flag, each with the sample weights it implies:
  ``"surrogate"`` mean + sqrt(B) std [SRC formula], ``"dual"`` the exact chi-square dual
  min_eta eta + sqrt(1 + B) sqrt(mean((l - eta)_+^2)) [INF choice], ``"reweight"`` primal reweighting [INF].
- :class:`DependenceEstimator`: cross-modal dependence from per-sample unimodal losses (Spearman correlation,
  mapped to the Gaussian-copula parameter 2 sin(pi r / 6), smoothed with an EMA) [INF; the sources say
  "shared copula" only].
- :class:`DROMethod`: the training glue both plug-ins share (robust loss over the labelled rows, modality
  dropout, early stopping on the robust validation objective by default (spec 2.4 [INF]; the benchmark's
  log-likelihood and accuracy are alternatives), per-epoch diagnostics for ``extras()``).
- :class:`ModalityAwareDRO` (with :class:`MMDROHparams`): mm_dro's network and loss. It lives here, not in
  ``mm_dro.py``, because ``ef_dro`` reuses it twice: its ``network="per_modality"`` is this network, and its
  ``radius="matched"`` fits this method inside the ef_dro run to read off mm_dro's budget (and the shared
  blocks, unlike another plug-in file, are part of a plug-in's source hash, so a change here re-keys both).

The chi-square divergence is D(Q||P) = E_P[(dQ/dP - 1)^2] (no 1/2 factor), so the ball {D <= B} has the
dual radius sqrt(1 + B). All objectives work on a per-sample loss vector and an optional ``valid`` mask
(rows that count, e.g. labelled ones), with masked sums instead of boolean indexing, so nothing in the
backward pass needs a non-deterministic CUDA kernel and nothing forces a host sync.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.contracts import Split, TrainContext
from benchmark.hparams import Choice, Each, Range, hparam
from benchmark.training import fit_network, labeled_accuracy

from ._blocks import LOG_LIKELIHOOD, Batch, TorchMethod, labeled_log_likelihood, make_encoder, zero_fill

OBJECTIVES = ("surrogate", "dual", "reweight")
#: The radius grid of spec 2.3(d), also the search space of every radius.
RHO_GRID = (0.01, 0.05, 0.1, 0.5, 1.0)
#: Bisection steps for the dual's one-dimensional inner problem (float64; the bracket shrinks 2^-60).
DUAL_BISECTION_STEPS = 60
#: Rows per chunk when a whole split is pushed through a network outside training.
CHUNK = 4096


# --------------------------------------------------------------------------------------------- budget
def modality_budget(rho: Sequence[float] | torch.Tensor, gamma: torch.Tensor | None = None) -> float:
    """B = sum_k rho_k + 2 sum_{i<j} |gamma_ij| sqrt(rho_i rho_j) [SRC, TL;DR of the paper].

    ``gamma=None`` (or zeros) is the independent budget sum_k rho_k; all |gamma_ij| = 1 gives
    (sum_k sqrt(rho_k))^2. Only the strict upper triangle of ``gamma`` is read."""
    r = torch.as_tensor(rho, dtype=torch.float64).flatten()
    if bool((r < 0).any()) or not bool(torch.isfinite(r).all()):
        raise ValueError(f"radii must be finite and non-negative, got {r.tolist()}")
    total = float(r.sum())
    if gamma is None or r.numel() < 2:
        return total
    g = torch.as_tensor(gamma, dtype=torch.float64)
    if g.shape != (r.numel(), r.numel()):
        raise ValueError(f"gamma must be ({r.numel()}, {r.numel()}), got {tuple(g.shape)}")
    upper = torch.triu(torch.ones_like(g, dtype=torch.bool), diagonal=1)
    cross = (g.abs().clamp(max=1.0) * torch.sqrt(torch.outer(r, r)))[upper].sum()
    return total + 2.0 * float(cross)


# ----------------------------------------------------------------------------------------- objectives
def _moments(losses: torch.Tensor, v: torch.Tensor):
    n = v.sum()
    nc = n.clamp(min=1.0)
    mean = (v * losses).sum() / nc
    var = (v * (losses - mean) ** 2).sum() / nc  # population variance (ddof = 0), as the spec asks
    return n, nc, mean, var


def _masked_max(losses: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return torch.where(valid, losses, torch.full_like(losses, -math.inf)).max()


def _masked_min(losses: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return torch.where(valid, losses, torch.full_like(losses, math.inf)).min()


def surrogate_risk(losses: torch.Tensor, B: float, valid: torch.Tensor | None = None, eps: float = 1e-8,
                   clip: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """mean(l) + sqrt(B) sqrt(Var(l) + eps) [SRC formula]; population variance; the std term is skipped
    for fewer than two rows; ``clip`` caps the value at max(l) (the worst case never exceeds it) [INF].
    Returns the risk and the (detached) weights the formula puts on each row, (1 + sqrt(B) z_i) / n,
    which may be negative where the closed form leaves the valid region."""
    valid = torch.ones_like(losses, dtype=torch.bool) if valid is None else valid
    v = valid.to(losses.dtype)
    n, nc, mean, var = _moments(losses, v)
    if B == 0:
        return mean, (v / nc).detach()
    sd = torch.sqrt(var + eps)
    risk = mean + math.sqrt(B) * sd
    if clip:
        risk = torch.minimum(risk, _masked_max(losses, valid))
    enough = n >= 2
    risk = torch.where(enough, risk, mean)
    with torch.no_grad():
        w = v * (1.0 + math.sqrt(B) * (losses - mean) / sd) / nc
        w = torch.where(enough, w, v / nc)
    return risk, w.detach()


def reweight_risk(losses: torch.Tensor, B: float, valid: torch.Tensor | None = None,
                  eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """Primal reweighting: p_i = max(0, 1 + sqrt(B) (l_i - mean) / sd) / n, renormalised and detached;
    risk = sum_i p_i l_i. Equals the surrogate when no weight is clipped. The weights satisfy
    p >= 0, sum p = 1 and n sum (p_i - 1/n)^2 <= B (clipping and renormalising only shrink the
    divergence)."""
    valid = torch.ones_like(losses, dtype=torch.bool) if valid is None else valid
    v = valid.to(losses.dtype)
    with torch.no_grad():
        ld = losses.detach()
        n, nc, mean, var = _moments(ld, v)
        if B == 0:
            p = v / nc
        else:
            sd = torch.sqrt(var + eps)
            w = v * (1.0 + math.sqrt(B) * (ld - mean) / sd).clamp(min=0.0)
            p = w / w.sum().clamp(min=torch.finfo(ld.dtype).tiny)
            p = torch.where(n >= 2, p, v / nc)
    return (p * losses).sum(), p


def _unit_scale(ld: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(l - min) / (max - min) on the valid rows (0 elsewhere), with min and the scale (1 when all are equal).
    The dual is translation- and scale-equivariant, so it is solved on [0, 1], where neither the squares
    underflow nor the bisection loses precision however large or small the losses are."""
    lo, hi = _masked_min(ld, valid), _masked_max(ld, valid)
    scale = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    return torch.where(valid, (ld - lo) / scale, torch.zeros_like(ld)), lo, scale


def _unit_eta(u: torch.Tensor, B: float, valid: torch.Tensor) -> torch.Tensor:
    v = valid.to(torch.float64)
    n, nc, mean, var = _moments(u, v)
    c = math.sqrt(1.0 + B)
    eta_closed = mean - torch.sqrt(var) / math.sqrt(B)
    lo, hi = torch.zeros((), dtype=u.dtype, device=u.device), torch.ones((), dtype=u.dtype, device=u.device)
    for _ in range(DUAL_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        r = v * (u - mid).clamp(min=0.0)
        decreasing = c * r.sum() / nc > torch.sqrt((r * r).sum() / nc)  # f'(mid) < 0: eta* is to the right
        lo = torch.where(decreasing, mid, lo)
        hi = torch.where(decreasing, hi, mid)
    return torch.where(eta_closed <= 0, eta_closed, 0.5 * (lo + hi))


def chi2_dual_eta(losses: torch.Tensor, B: float, valid: torch.Tensor | None = None) -> torch.Tensor:
    """The minimiser eta* of f(eta) = eta + sqrt(1 + B) sqrt(mean((l - eta)_+^2)) (float64, no autograd).

    f is convex in the scalar eta. When the closed-form weights 1 + sqrt(B) z_i are all >= 0, the
    stationary point is eta = mean - sd / sqrt(B) (below every loss); otherwise it lies in
    [min l, max l] and is found by bisection on the sign of f'. When (1 + B) k_max >= n, with k_max the
    number of rows tied at the maximum, f decreases up to max l and eta* = max l. (B = 0: -inf.)"""
    valid = torch.ones_like(losses, dtype=torch.bool) if valid is None else valid
    ld = losses.detach().to(torch.float64)
    if B <= 0:
        return ld.new_tensor(-math.inf)
    u, lo, scale = _unit_scale(ld, valid)
    return lo + scale * _unit_eta(u, B, valid)


def dual_value(losses: torch.Tensor, B: float, eta: torch.Tensor | float, valid: torch.Tensor | None = None):
    """f(eta) = eta + sqrt(1 + B) sqrt(mean over valid rows of (l - eta)_+^2)."""
    valid = torch.ones_like(losses, dtype=torch.bool) if valid is None else valid
    v = valid.to(losses.dtype)
    r = v * (losses - eta).clamp(min=0.0)
    return eta + math.sqrt(1.0 + B) * torch.sqrt((r * r).sum() / v.sum().clamp(min=1.0))


def dual_risk(losses: torch.Tensor, B: float, valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact chi-square worst case sup {E_Q l : D(Q||P) <= B} = min_eta f(eta) (Duchi & Namkoong;
    Cressie-Read k = 2) [INF choice]. eta* is found outside autograd (:func:`chi2_dual_eta`); the risk is
    returned as sum_i p*_i l_i with the detached worst-case weights p*_i proportional to (l_i - eta*)_+ (or
    uniform on the tied maxima when eta* = max l). Its value is f(eta*) and, by Danskin's theorem, its
    gradient is that of the worst-case risk; this form stays finite where sqrt(mean(.)^2) has no gradient."""
    valid = torch.ones_like(losses, dtype=torch.bool) if valid is None else valid
    v = valid.to(losses.dtype)
    with torch.no_grad():
        n = v.sum()
        uniform = v / n.clamp(min=1.0)
        if B <= 0:
            p = uniform
        else:
            ld = losses.detach().to(torch.float64)
            vd = v.to(torch.float64)
            u, _, _ = _unit_scale(ld, valid)
            r = vd * (u - _unit_eta(u, B, valid)).clamp(min=0.0)
            top = valid & (ld == _masked_max(ld, valid))
            k_top = top.to(torch.float64).sum()
            # f'(eta) -> 1 - sqrt((1 + B) k_top / n) just below max l: if that is <= 0, f decreases up to
            # max l, the worst case is max l and uniform weights on the tied maxima attain it.
            at_max = (1.0 + B) * k_top >= n.to(torch.float64)
            p = torch.where(r.sum() > 0, r / r.sum().clamp(min=torch.finfo(torch.float64).tiny), uniform.double())
            p = torch.where(at_max, top.to(torch.float64) / k_top.clamp(min=1.0), p)
            p = torch.where(n >= 2, p, uniform.double()).to(losses.dtype)
    return (p * losses).sum(), p


def robust_risk(losses: torch.Tensor, B: float, objective: str = "surrogate", valid: torch.Tensor | None = None,
                eps: float = 1e-8, clip: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """One of the three objectives on the ``valid`` rows of ``losses``: ``(risk, weights)``. With B = 0
    every objective is plain risk minimisation, mean(l)."""
    if B < 0 or not math.isfinite(B):
        raise ValueError(f"the budget B must be finite and >= 0, got {B}")
    if objective == "surrogate":
        return surrogate_risk(losses, B, valid, eps=eps, clip=clip)
    if objective == "dual":
        return dual_risk(losses, B, valid)
    if objective == "reweight":
        return reweight_risk(losses, B, valid, eps=eps)
    raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")


def weight_spread(weights: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(n max p, n min p, chi-square n sum (p - 1/n)^2, share of rows with p <= 0) over the valid rows."""
    v = valid.to(weights.dtype)
    n = v.sum().clamp(min=1.0)
    dev = v * (weights - 1.0 / n)
    return torch.stack([n * _masked_max(weights, valid), n * _masked_min(weights, valid), n * (dev * dev).sum(),
                        (v * (weights <= 0).to(weights.dtype)).sum() / n])


# ----------------------------------------------------------------------------------------- dependence
def average_ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n, ties sharing their average rank (as scipy.stats.rankdata)."""
    s = torch.sort(x).values
    lo = torch.searchsorted(s, x, right=False)
    hi = torch.searchsorted(s, x, right=True)
    return (lo + hi + 1).to(torch.float64) / 2.0


def spearman(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """Spearman's rank correlation (Pearson on average ranks); None when either side is constant."""
    ra, rb = average_ranks(a.to(torch.float64)), average_ranks(b.to(torch.float64))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = torch.sqrt((ra * ra).sum() * (rb * rb).sum())
    if len(a) < 2 or float(den) <= 0:
        return None
    return float(((ra * rb).sum() / den).clamp(-1.0, 1.0))


def copula_gamma(r: float) -> float:
    """Gaussian-copula correlation from Spearman's rho: gamma = 2 sin(pi r / 6) (inverse of rho_S(gamma))."""
    return 2.0 * math.sin(math.pi * r / 6.0)


class DependenceEstimator:
    """gamma_ij from per-sample unimodal losses, one estimate per call (once per epoch), smoothed with an
    EMA: the first estimate of a pair sets it, later ones enter with weight 1 - momentum. A pair with
    fewer than ``min_samples`` rows where both losses are valid, or a constant side, keeps its value."""

    def __init__(self, n_modalities: int, momentum: float = 0.9, min_samples: int = 10) -> None:
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"dependence momentum must be in [0, 1), got {momentum}")
        self.momentum, self.min_samples = momentum, min_samples
        self.gamma = torch.eye(n_modalities, dtype=torch.float64)
        self.seen = torch.eye(n_modalities, dtype=torch.bool)
        self.updates = 0

    def update(self, losses: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        losses, valid = losses.detach().cpu().to(torch.float64), valid.detach().cpu()
        M = losses.shape[1]
        for i in range(M):
            for j in range(i + 1, M):
                rows = valid[:, i] & valid[:, j]
                if int(rows.sum()) < self.min_samples:
                    continue
                r = spearman(losses[rows, i], losses[rows, j])
                if r is None:
                    continue
                g = copula_gamma(r)
                if bool(self.seen[i, j]):
                    g = self.momentum * float(self.gamma[i, j]) + (1.0 - self.momentum) * g
                self.gamma[i, j] = self.gamma[j, i] = g
                self.seen[i, j] = self.seen[j, i] = True
        self.updates += 1
        return self.gamma


# ------------------------------------------------------------------------------------ training glue
NON_NEGATIVE = Range(0, None)
#: The early-stopping criteria a DRO method may use, and the names they are recorded under.
EARLY_STOPPING = ("robust", LOG_LIKELIHOOD, "accuracy")
CRITERION_NAMES = {"robust": "robust_risk", LOG_LIKELIHOOD: LOG_LIKELIHOOD, "accuracy": "accuracy"}


@dataclass(frozen=True)
class DROHparams:
    """Fields both DRO methods share (ef_dro reads ``rho``, ``rho_by_modality`` and the ``dependence*`` fields
    only with ``radius="matched"`` (they configure the mm_dro fit whose budget it matches) or
    ``radius="probe_budget"``)."""

    objective: str = hparam("surrogate", source="SRC", allowed=OBJECTIVES,
                            doc='training objective: "surrogate" (mean + sqrt(B) std, population std: the closed '
                                'form of the paper [SRC formula]); "dual" (exact chi-square dual, a 1-D convex '
                                'inner problem) and "reweight" (primal reweighting) are [INF] alternatives')
    rho: float = hparam(0.1, Choice(RHO_GRID), source="INF", allowed=NON_NEGATIVE,
                        doc="per-modality chi-square radius rho_k, equal for every modality (spec 2.3(d): default "
                            "0.1; its grid {0.01, 0.05, 0.1, 0.5, 1.0} is the search space)")
    rho_by_modality: Mapping[str, float] | None = hparam(None, source="INF", allowed=Each(NON_NEGATIVE),
                                                         doc="radii for named modalities that override rho (give a "
                                                             "modality a shift is known to hit a larger one); the "
                                                             "names must be the dataset's")
    dependence: str = hparam("copula", source="SRC/INF", allowed=("copula", "independent"),
                             doc='cross-modal dependence: "copula" estimates gamma from auxiliary unimodal losses '
                                 '[SRC: a shared copula; INF: the estimator]; "independent" sets gamma = 0, the '
                                 'fallback budget sum_k rho_k [INF]')
    dependence_momentum: float = hparam(0.9, source="INF", allowed=Range(0, 1, high_open=True),
                                        doc="EMA momentum of the gamma estimates across epochs")
    dependence_warmup_epochs: int = hparam(1, source="INF", allowed=NON_NEGATIVE,
                                           doc="epochs before the first gamma estimate (the auxiliary heads start "
                                               "untrained); B is the independent budget until then")
    dependence_min_samples: int = hparam(10, source="INF", allowed=NON_NEGATIVE,
                                         doc="fewest rows with both unimodal losses valid for a pair's estimate "
                                             "to count")
    std_eps: float = hparam(1e-8, source="INF", allowed=NON_NEGATIVE,
                            doc="epsilon inside the square root of the variance (spec 2.3(b)1 and 2.8, its value)")
    surrogate_clip: bool = hparam(True, source="INF",
                                  doc="cap the surrogate at the batch's max loss (spec 2.8: with a large B it can "
                                      "exceed max l)")
    modality_dropout: float = hparam(0.0, source="INF", allowed=Range(0, 1, high_open=True),
                                     doc="training-time modality dropout probability (spec 2.5: optional, p = 0.2 "
                                         "when used; 0 = off)")
    early_stopping: str = hparam("robust", source="INF", allowed=EARLY_STOPPING,
                                 doc='early-stopping criterion on the labelled validation samples: "robust" (minus '
                                     'the training objective, the robust risk of the per-sample cross-entropies at '
                                     'the epoch\'s B; the spec 2.4 [INF] schedule), "log_likelihood" (the '
                                     'benchmark\'s default criterion for the other methods) or "accuracy" (flat on '
                                     'imbalanced data: keeps the first epoch\'s majority-class predictor)')


def _round(x: float, digits: int = 5) -> float | None:
    x = float(x)
    return None if not math.isfinite(x) else float(f"{x:.{digits}g}")


class DROMethod(TorchMethod):
    """Shared training glue. A subclass provides ``build``, ``logits``, ``_fused_losses(x, mask)``
    (per-sample cross-entropy on a training batch, with grad), ``_aux_loss(...)``, ``_unimodal_losses(split)``
    (or None when it needs no dependence estimate) and ``_current_budget()``."""

    Hparams = DROHparams

    # ---- radii
    def radii(self) -> list[float]:
        hp = self.hparams
        names = self.info.modality_names
        extra = dict(hp.rho_by_modality or {})
        unknown = sorted(set(extra) - set(names))
        if unknown:
            raise ValueError(f"rho_by_modality names unknown modalities {unknown}; the dataset has {list(names)}")
        rho = [float(extra.get(n, hp.rho)) for n in names]
        if any(r < 0 or not math.isfinite(r) for r in rho):
            raise ValueError(f"radii must be finite and >= 0, got {rho}")
        return rho

    def _modality_aware_budget(self) -> float:
        gamma = self._dep.gamma if self._dep is not None else None
        return modality_budget(self.radii(), gamma)

    def _current_budget(self) -> float:
        raise NotImplementedError

    def _needs_dependence(self) -> bool:
        return self.hparams.dependence == "copula"

    # ---- hooks the subclass fills
    def _fused_losses(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _unimodal_losses(self, split: Split) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    # ---- pieces
    def _train_inputs(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Training-time modality dropout (spec 2.5): drop present modalities with probability p, keep at
        least one per row, zero-fill what was dropped. Draws from ``ctx.generator``."""
        p = self.hparams.modality_dropout
        if p <= 0:
            return batch.x, batch.mask
        u = torch.rand(tuple(batch.mask.shape), generator=self.ctx.generator).to(batch.mask.device)
        keep = batch.mask & (u >= p)
        keep = torch.where(keep.any(dim=1, keepdim=True), keep, batch.mask)
        return zero_fill(batch.x, keep), keep

    def _robust(self, losses: torch.Tensor, valid: torch.Tensor, record: bool = True) -> torch.Tensor:
        hp = self.hparams
        risk, w = robust_risk(losses, self.budget_B, hp.objective, valid, eps=hp.std_eps, clip=hp.surrogate_clip)
        if record:
            with torch.no_grad():
                counts = (valid.sum() >= 2).to(torch.float64)
                spread = torch.where(counts > 0, weight_spread(w.to(torch.float64), valid), 0.0)
                self._spread_sum = self._spread_sum + spread
                self._spread_count = self._spread_count + counts
        return risk

    @property
    def stopping_criterion(self) -> str:  # type: ignore[override]
        return CRITERION_NAMES[self.hparams.early_stopping]

    def val_score(self) -> float:
        """The ``early_stopping`` criterion on the validation split (higher is better); without a labelled
        validation sample every criterion is the constant 0.0."""
        val = self.val_split
        criterion = self.hparams.early_stopping
        if criterion == "accuracy":
            return labeled_accuracy(self.predict_proba(val.x, val.mask), val)
        if criterion == LOG_LIKELIHOOD or not bool(val.labeled.any()):
            return labeled_log_likelihood(self.predict_proba(val.x, val.mask), val)
        with torch.no_grad():
            self.net.eval()
            x = zero_fill(val.x, val.mask)
            logits = self.logits(x, val.mask)
            losses = F.cross_entropy(logits, val.y.clamp(min=0), reduction="none")
            risk = self._robust(losses, val.labeled & (val.y >= 0), record=False)
        return -float(risk)

    # ---- the trainer's hooks
    def on_epoch_start(self, epoch: int) -> None:
        if self._dep is not None and epoch >= self.hparams.dependence_warmup_epochs:
            with torch.no_grad():
                self.net.eval()
                losses, valid = self._unimodal_losses(self.train_split)
            self._dep.update(losses, valid)
        self.budget_B = self._current_budget()
        self._reset_spread()

    def on_epoch_end(self, epoch: int) -> None:
        spread = (self._spread_sum / self._spread_count.clamp(min=1.0)).tolist()
        log = self._log
        self._B_history.append(float(self.budget_B))
        log["B"].append(_round(self.budget_B))
        if self._dep is not None:
            g = self._dep.gamma
            M = g.shape[0]
            upper = torch.triu(torch.ones(M, M, dtype=torch.bool), diagonal=1)
            log["gamma_mean_abs"].append(_round(g[upper].abs().mean()) if M > 1 else None)
        for key, value in zip(("weight_n_max", "weight_n_min", "weight_chi2", "weight_zero_share"), spread,
                              strict=True):
            log[key].append(_round(value, 4))

    def _start(self, train: Split, val: Split, ctx: TrainContext) -> None:
        self.radii()  # rho_by_modality must name the dataset's modalities (the values were checked at __init__)
        self.device = ctx.device
        self.ctx = ctx
        self.train_split, self.val_split = train, val
        M = len(self.info.modalities)
        self._dep = (DependenceEstimator(M, self.hparams.dependence_momentum,
                                               self.hparams.dependence_min_samples)
                           if self._needs_dependence() else None)
        self.budget_B = self._current_budget()
        self._log: dict[str, list] = {k: [] for k in ("B", "weight_n_max", "weight_n_min", "weight_chi2",
                                                       "weight_zero_share")}
        self._B_history: list[float] = []  # the budget of every epoch run, unrounded (mean_budget())
        if self._dep is not None:
            self._log["gamma_mean_abs"] = []
        self._reset_spread()

    def _reset_spread(self) -> None:
        self._spread_sum = torch.zeros(4, dtype=torch.float64, device=self.device)
        self._spread_count = torch.zeros((), dtype=torch.float64, device=self.device)

    def fit(self, train: Split, val: Split, ctx: TrainContext) -> None:
        # As TorchMethod.fit, but early stopping uses the robust validation objective by default (spec 2.4).
        self._start(train, val, ctx)
        self.net = self.build(ctx.budget.width).to(ctx.device)
        fit_network(self.net, self.loss, train, ctx, val_score=self.val_score,
                    on_epoch_start=self.on_epoch_start, on_epoch_end=self.on_epoch_end,
                    criterion=self.stopping_criterion)

    def mean_budget(self) -> float:
        """The mean of B over every epoch the fit ran (the kept epoch's and the later ones alike): the value
        ef_dro's ``radius="matched"`` takes as its radius (spec "Controls the suite must run")."""
        if not self._B_history:
            return float(self.budget_B)
        return math.fsum(self._B_history) / len(self._B_history)

    def extras(self) -> dict[str, Any]:
        """B (at the end of training and its mean over the epochs run), the radii, the estimated dependence
        matrix and, per epoch, B, mean |gamma| and the spread of the sample weights (mean over the epoch's
        batches of n max p, n min p, chi-square to uniform, share <= 0)."""
        if not hasattr(self, "_log"):
            return {}
        names = list(self.info.modality_names)
        out: dict[str, Any] = {
            "objective": self.hparams.objective,
            "budget_B": _round(self.budget_B),
            "budget_B_mean": _round(self.mean_budget()),
            "modality_dropout": self.hparams.modality_dropout,
            "rho": {n: _round(r) for n, r in zip(names, self.radii(), strict=True)},
            "independent_budget": _round(sum(self.radii())),
            "per_epoch": self._log,
        }
        if self._dep is not None:
            out["modalities"] = names
            out["gamma"] = [[_round(v, 4) for v in row] for row in self._dep.gamma.tolist()]
            out["gamma_updates"] = self._dep.updates
        return out


def per_sample_ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy; rows with y = -1 get a finite placeholder (mask them with y >= 0)."""
    return F.cross_entropy(logits, y.clamp(min=0), reduction="none")


def chunks(split: Split, size: int = CHUNK):
    for start in range(0, len(split), size):
        sl = slice(start, start + size)
        yield {k: v[sl] for k, v in split.x.items()}, split.mask[sl], split.y[sl]


# ------------------------------------------------------------------------------ the modality-aware network
def per_modality_network(info, width: int) -> dict[str, nn.Module]:
    """mm_dro's predictor: one encoder per modality (``make_encoder``) and f, one hidden layer on
    concat(e_1..e_M, mask). Built in this order (encoders, then f) by both mm_dro and ef_dro's
    ``network="per_modality"``, so the two start from the same weights under the same seed."""
    M, K = len(info.modalities), info.n_classes
    return {"enc": nn.ModuleDict({m.name: make_encoder(m, width) for m in info.modalities}),
            "head": nn.Sequential(nn.Linear(M * width + M, width), nn.ReLU(), nn.Linear(width, K))}


def per_modality_logits(net: nn.Module, info, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    enc = [net["enc"][m.name](x[m.name]) for m in info.modalities]
    return net["head"](torch.cat([*enc, mask.to(enc[0].dtype)], dim=1))


@dataclass(frozen=True)
class MMDROHparams(DROHparams):
    head: str = hparam("mlp", source="INF", allowed=("mlp", "late"),
                       doc='predictor f on the encodings: "mlp" (one hidden layer on concat(e_1..e_M, mask)) or '
                           '"late" (a linear head per modality, averaged over the present modalities; the ablation '
                           'of the spec)')
    aux_head: str = hparam("linear", source="INF", allowed=("linear", "mlp"),
                           doc='auxiliary unimodal heads (for the dependence estimate): "linear" or "mlp" (one '
                               'hidden layer)')
    aux_detach: bool = hparam(True, source="INF",
                              doc="train the auxiliary heads on detached encodings, so they measure the encoders "
                                  "without changing them")
    encoder_error_weight: float = hparam(0.0, source="SRC/INF", allowed=NON_NEGATIVE,
                                         doc="encoder-error extension (spec 2.3(e); SRC: it exists, INF: its form): "
                                             "weight L of sum_k L * eps_k, with eps_k the mean increase of the "
                                             "per-sample loss when modality k's input gets Gaussian noise; 0 = off "
                                             "(the spec's default)")
    encoder_error_noise: float = hparam(0.1, source="INF", allowed=NON_NEGATIVE,
                                        doc="standard deviation of that input noise")


class ModalityAwareDRO(DROMethod):
    """mm_dro's network and loss (the plug-in ``mm_dro`` names it and documents it). With rho = 0 (every
    rho_k = 0) B = 0 whatever gamma is, and the objective is plain ERM of this network: the auxiliary heads
    read detached encodings, so they never move the predictor (the suite's same-network ERM control)."""

    Hparams = MMDROHparams

    def _current_budget(self) -> float:
        return self._modality_aware_budget()

    def build(self, width: int) -> nn.Module:
        mods, K = self.info.modalities, self.info.n_classes
        if self.hparams.head == "mlp":
            parts = per_modality_network(self.info, width)
        else:
            parts = {"enc": nn.ModuleDict({m.name: make_encoder(m, width) for m in mods}),
                     "head": nn.ModuleDict({m.name: nn.Linear(width, K) for m in mods})}
        if self._dep is not None:
            def aux() -> nn.Module:
                if self.hparams.aux_head == "linear":
                    return nn.Linear(width, K)
                return nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, K))
            parts["aux"] = nn.ModuleDict({m.name: aux() for m in mods})
        return nn.ModuleDict(parts)

    # ---- network pieces
    def _encode(self, x: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        return [self.net["enc"][m.name](x[m.name]) for m in self.info.modalities]

    def _head(self, enc: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        if self.hparams.head == "mlp":
            return self.net["head"](torch.cat([*enc, mask.to(enc[0].dtype)], dim=1))
        logits = torch.stack([self.net["head"][m.name](e) for m, e in zip(self.info.modalities, enc, strict=True)],
                             dim=1)
        w = mask.to(logits.dtype).unsqueeze(2)
        return (logits * w).sum(dim=1) / w.sum(dim=1).clamp(min=1.0)

    def logits(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        return self._head(self._encode(x), mask)

    def _aux_logits(self, enc: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.net["aux"][m.name](e.detach() if self.hparams.aux_detach else e)
                for m, e in zip(self.info.modalities, enc, strict=True)]

    # ---- training
    def loss(self, batch: Batch) -> torch.Tensor:
        x, mask = self._train_inputs(batch)
        valid = batch.y >= 0
        enc = self._encode(x)
        losses = per_sample_ce(self._head(enc, mask), batch.y)
        total = self._robust(losses, valid)
        if self.hparams.encoder_error_weight > 0:
            total = total + self.hparams.encoder_error_weight * self._encoder_error(x, mask, enc, losses, batch.y)
        if self._dep is not None:
            v = valid.to(losses.dtype)
            for j, logit in enumerate(self._aux_logits(enc)):
                rows = v * mask[:, j].to(v.dtype)
                total = total + (per_sample_ce(logit, batch.y) * rows).sum() / rows.sum().clamp(min=1.0)
        return total

    def _encoder_error(self, x, mask, enc, losses, y) -> torch.Tensor:
        """sum_k eps_k, eps_k = mean over labelled rows of (loss with modality k's input noised - loss)_+."""
        v = (y >= 0).to(losses.dtype)
        err = losses.new_zeros(())
        for j, m in enumerate(self.info.modalities):
            xk = x[m.name]
            noise = torch.randn(tuple(xk.shape), generator=self.ctx.generator).to(xk.device, xk.dtype)
            keep = mask[:, j].reshape(-1, *([1] * (xk.dim() - 1))).to(xk.dtype)
            noisy = list(enc)
            noisy[j] = self.net["enc"][m.name](xk + self.hparams.encoder_error_noise * noise * keep)
            lk = per_sample_ce(self._head(noisy, mask), y)
            err = err + (v * (lk - losses).clamp(min=0.0)).sum() / v.sum().clamp(min=1.0)
        return err

    def _unimodal_losses(self, split: Split) -> tuple[torch.Tensor, torch.Tensor]:
        out = []
        for x, _mask, y in chunks(split):
            enc = self._encode(x)
            out.append(torch.stack([per_sample_ce(lg, y) for lg in self._aux_logits(enc)], dim=1))
        losses = torch.cat(out)
        valid = split.mask & (split.y >= 0).unsqueeze(1)
        return losses, valid
