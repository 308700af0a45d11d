"""Conformal Shapley intervals and modality selection (Chandy et al.; the author draft "Shapley Value-Based
Modality Selection with Conditional Optimality Guarantee" and its code ``shap_mml``; arXiv 2602.00171).

One model per coalition of modalities is trained on a training part I1 of the training split; on the
calibration part I2 every point gets pointwise modality Shapley values of the loss reduction over the
trivial predictor; split conformal gives marginal intervals and p-values per modality; a kernel quantile
regression of the Shapley values on a reduced representation of the input gives conditional intervals,
and a test sample is predicted by the coalition of its (present) modalities with the largest positive
lower bounds, at most q of them.

Module layout: pure functions first (Shapley weights, conformal intervals, p-values, the quantile
regressor, the selection rule; the unit tests check these), then the two coalition-model families,
then the method.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import stats
from sklearn.linear_model import QuantileRegressor
from torch import nn

from benchmark.contracts import DatasetInfo, Method, Split, TrainContext
from benchmark.hparams import Choice, IntUniform, LogUniform, hparam
from benchmark.seeding import key_to_int, keyed_rng, torch_generator
from benchmark.training import Batch, fit_network

from ._blocks import cross_entropy, make_encoder, zero_fill

# ---------------------------------------------------------------------------------------------------
# Coalitions as bit masks: bit j set <=> modality j in S. Coalition 0 is the empty set.
# ---------------------------------------------------------------------------------------------------


def bits_to_members(bits: int, n_modalities: int) -> tuple[int, ...]:
    return tuple(j for j in range(n_modalities) if bits >> j & 1)


def members_to_bits(members: Sequence[int]) -> int:
    return sum(1 << int(j) for j in set(members))


def shapley_weight_matrix(n_modalities: int) -> np.ndarray:
    """``W`` of shape (2^M, M) with ``phi = V @ W`` for a value table ``V`` of shape (n, 2^M) (column =
    coalition bits): ``W[S|j, j] += w(|S|)``, ``W[S, j] -= w(|S|)`` for S not containing j, with the Shapley
    weight w(s) = s!(M-s-1)!/M!."""
    m = n_modalities
    w = np.zeros((1 << m, m))
    for s_bits in range(1 << m):
        size = bin(s_bits).count("1")
        for j in range(m):
            if s_bits >> j & 1:
                continue
            weight = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
            w[s_bits | (1 << j), j] += weight
            w[s_bits, j] -= weight
    return w


def exact_shapley(values: np.ndarray) -> np.ndarray:
    """Pointwise Shapley values from a full value table ``values`` (n, 2^M) whose column 0 is val(empty)."""
    m = int(round(math.log2(values.shape[-1])))
    if 1 << m != values.shape[-1]:
        raise ValueError(f"a value table needs 2^M columns, got {values.shape[-1]}")
    return values @ shapley_weight_matrix(m)


def permutation_coalitions(perms: np.ndarray) -> list[int]:
    """The non-empty coalitions (prefixes of every permutation) that permutation sampling evaluates."""
    out = set()
    for perm in perms:
        bits = 0
        for j in perm:
            bits |= 1 << int(j)
            out.add(bits)
    return sorted(out)


def permutation_shapley(value_of: Mapping[int, np.ndarray], perms: np.ndarray, n: int) -> np.ndarray:
    """Castro et al.'s permutation estimator, the same permutations for every point: phi_j is the mean over
    permutations of val(prefix + j) - val(prefix). ``value_of[bits]`` is the (n,) value of a coalition;
    val(empty) = 0. Each permutation telescopes, so efficiency (sum_j phi_j = val(all)) holds exactly."""
    m = perms.shape[1]
    phi = np.zeros((n, m))
    for perm in perms:
        bits, prev = 0, np.zeros(n)
        for j in perm:
            bits |= 1 << int(j)
            cur = value_of[bits]
            phi[:, int(j)] += cur - prev
            prev = cur
    return phi / len(perms)


def conformal_ranks(n_cal: int, alpha: float, lower_rank: str = "ceil") -> tuple[int, int]:
    """1-based ranks (l, u) of Algorithm 1: l = ceil((n+1) alpha/2) ("ceil", the draft and code) or
    floor((n+1) alpha/2) ("floor", the rank for which P(covered) >= 1 - alpha holds exactly);
    u = ceil((n+1)(1 - alpha/2)). l = 0 means -inf, u = n+1 means +inf."""
    if lower_rank == "ceil":
        lo = math.ceil((n_cal + 1) * alpha / 2 - 1e-12)
    elif lower_rank == "floor":
        lo = math.floor((n_cal + 1) * alpha / 2 + 1e-12)
    else:
        raise ValueError(f"lower_rank must be 'ceil' or 'floor', got {lower_rank!r}")
    hi = math.ceil((n_cal + 1) * (1 - alpha / 2) - 1e-12)
    return max(lo, 0), min(hi, n_cal + 1)


def marginal_interval(phi: np.ndarray, alpha: float, lower_rank: str = "ceil",
                      clamp_upper: bool = False) -> tuple[float, float]:
    """Split-conformal interval [phi_(l), phi_(u)] of one modality's calibration Shapley values (Algorithm 1).

    When u > n_cal the valid upper end is +inf; ``clamp_upper`` reproduces the code, which clamps u to
    n_cal (and l to 1)."""
    n = len(phi)
    lo, hi = conformal_ranks(n, alpha, lower_rank)
    if clamp_upper:
        lo, hi = max(lo, 1), min(hi, n)
    srt = np.sort(np.asarray(phi, dtype=np.float64))
    lower = -math.inf if lo < 1 else float(srt[lo - 1])
    upper = math.inf if hi > n else float(srt[hi - 1])
    return lower, upper


def t_test_pvalue(phi: np.ndarray) -> float:
    """One-sided t-test of H0: E[phi_j | I1] <= 0 with the calibration values (1.0 for a constant phi)."""
    phi = np.asarray(phi, dtype=np.float64)
    n = len(phi)
    sd = float(phi.std(ddof=1)) if n > 1 else 0.0
    if sd < 1e-12:
        return 1.0 if phi.mean() <= 0 else 0.0
    return float(1.0 - stats.t.cdf(phi.mean() / (sd / math.sqrt(n)), df=n - 1))


def conformal_pvalue(phi: np.ndarray) -> float:
    """(1 + #{phi_j^i <= 0}) / (n_cal + 1), as in the code."""
    phi = np.asarray(phi)
    return float((1 + np.sum(phi <= 0)) / (len(phi) + 1))


class ReducedInput:
    """Omega(x): centre with the calibration mean, project on the top right singular vectors (SVD) of the
    centred calibration inputs. ``whiten`` divides each component by its calibration standard deviation."""

    def __init__(self, x_cal: np.ndarray, dim: int, whiten: bool = False) -> None:
        self.mean = x_cal.mean(axis=0)
        # torch's SVD (LAPACK under torch's own thread setting; numpy's BLAS threads oversubscribe small machines)
        _, s, vh = (t.numpy() for t in torch.linalg.svd(torch.as_tensor(x_cal - self.mean), full_matrices=False))
        k = max(1, min(dim, vh.shape[0]))
        self.components = vh[:k].T
        scale = s[:k] / math.sqrt(max(len(x_cal) - 1, 1))
        self.scale = np.where(scale > 1e-12, scale, 1.0) if whiten else np.ones(k)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) @ self.components / self.scale


class NystroemRBF:
    """Nystroem feature map of the RBF kernel K(a, b) = exp(-gamma |a - b|^2): landmarks L (rows of the
    calibration Omega), z(x) = K(x, L) U diag(s)^(-1/2) with U diag(s) U^T = K(L, L) + jitter I, so that
    z(a).z(b) approximates K(a, b), exactly on the landmarks up to the jitter."""

    def __init__(self, landmarks: np.ndarray, gamma: float, jitter: float) -> None:
        self.landmarks, self.gamma = landmarks, gamma
        s, u = np.linalg.eigh(self.kernel(landmarks) + jitter * np.eye(len(landmarks)))
        self.proj = u / np.sqrt(np.clip(s, 1e-12, None))

    def kernel(self, a: np.ndarray) -> np.ndarray:
        d2 = (a**2).sum(1)[:, None] + (self.landmarks**2).sum(1)[None, :] - 2 * a @ self.landmarks.T
        return np.exp(-self.gamma * np.clip(d2, 0.0, None))

    def __call__(self, a: np.ndarray) -> np.ndarray:
        return self.kernel(a) @ self.proj


@dataclass
class QuantileFit:
    """h(x) = z(x)^T w + Omega(x)^T beta + b, one conditional tau-quantile of one modality's Shapley value."""

    tau: float
    w: np.ndarray
    beta: np.ndarray
    intercept: float

    def predict(self, z: np.ndarray | None, omega: np.ndarray) -> np.ndarray:
        out = omega @ self.beta + self.intercept
        if z is not None and len(self.w):
            out = out + z @ self.w
        return out


def fit_kernel_quantile(z: np.ndarray | None, omega: np.ndarray, target: np.ndarray, tau: float,
                        lambda1: float, lambda2: float, intercept: bool = True) -> QuantileFit:
    """min (1/n) sum_i pinball_tau(target_i - h(x_i)) + lambda1 |w|_1 + lambda2 |beta|_1 with scikit-learn's
    ``QuantileRegressor`` (an exact linear program, HiGHS). ``z`` = None switches the kernel term off.

    Relation to the paper's problem (min pinball + lambda1 eta^T K eta + lambda2 |beta|^2 over
    h = sum_i eta_i K(., x_i) + Omega^T beta): with the Nystroem map z, K ~ Z Z^T and w plays K^(1/2) eta, so
    |w|_2^2 = eta^T K eta; the hypothesis space and the data term are the same (exactly the representer span
    when every calibration point is a landmark); the squared norms are replaced by l1 norms of the same
    coefficients (scikit-learn's only penalty) and an unpenalised intercept is added. The per-block lambdas
    are obtained by rescaling columns: alpha = lambda1, the Omega block multiplied by lambda1 / lambda2."""
    blocks, sizes = [], []
    if z is not None:
        blocks.append(z)
        sizes.append(z.shape[1])
    scale2 = lambda1 / lambda2
    blocks.append(omega * scale2)
    sizes.append(omega.shape[1])
    features = np.concatenate(blocks, axis=1)
    model = QuantileRegressor(quantile=float(tau), alpha=float(lambda1), fit_intercept=intercept, solver="highs")
    model.fit(features, np.asarray(target, dtype=np.float64))
    coef = np.asarray(model.coef_, dtype=np.float64)
    w = coef[: sizes[0]] if z is not None else np.zeros(0)
    beta = coef[-sizes[-1]:] * scale2
    return QuantileFit(tau=float(tau), w=w, beta=beta, intercept=float(model.intercept_) if intercept else 0.0)


def select_modalities(scores: np.ndarray, available: np.ndarray, q: int) -> np.ndarray:
    """The selection rule: among the available modalities with a positive score, the top min(q, #positive)
    by score (ties: lower modality index first). Returns the selected coalition's bits per sample."""
    scores = np.asarray(scores, dtype=np.float64)
    eligible = np.asarray(available, dtype=bool) & (scores > 0)
    n, m = scores.shape
    if q <= 0:
        return np.zeros(n, dtype=np.int64)
    masked = np.where(eligible, scores, -np.inf)
    order = np.argsort(-masked, axis=1, kind="stable")[:, : min(q, m)]
    keep = np.take_along_axis(eligible, order, axis=1)
    return ((keep.astype(np.int64) << order).sum(axis=1)).astype(np.int64)


# ---------------------------------------------------------------------------------------------------
# Coalition models.
# ---------------------------------------------------------------------------------------------------


class CoalitionMLPs(nn.Module):
    """One early-fusion network per coalition (the early_fusion method's TabularEncoder + linear head on the
    concatenated features and the mask, with everything outside the coalition zeroed: x * mask(S), the input
    keeps its shape and nn.Linear's initialisation), stacked so that all coalitions train in one batched pass.

    Each coalition has its own parameters, its own initialisation seed and its own early stopping; nothing is
    shared. Since a zeroed input block meets its first-layer rows only in products with zero, those rows are
    not stored: the first layer is kept per modality for the coalitions that contain it (``w1[j]`` of shape
    (C_j, d_j + 1, H), the +1 being the modality's mask entry) and summed into the coalitions through a 0/1
    matrix. Rows are always picked by 0/1 matmuls, never by indexing, so the backward pass has no scatter."""

    def __init__(self, coalitions: Sequence[int], block_sizes: Sequence[int], width: int, n_classes: int,
                 seeds: Sequence[int]) -> None:
        super().__init__()
        self.coalitions = [int(c) for c in coalitions]
        self.block_sizes = [int(d) for d in block_sizes]
        d_all = sum(self.block_sizes)
        gens = [torch_generator(int(seed)) for seed in seeds]

        def draw(fan_in: int, shape: tuple[int, ...]) -> torch.Tensor:  # nn.Linear: U(+-1/sqrt(fan_in))
            bound = 1.0 / math.sqrt(fan_in)
            return torch.stack([(torch.rand(*shape, generator=g) * 2 - 1) * bound for g in gens])

        w1_full, b1 = draw(d_all, (d_all, width)), draw(d_all, (1, width))
        w2, b2 = draw(width, (width, width)), draw(width, (1, width))
        w3, b3 = draw(width, (width, n_classes)), draw(width, (1, n_classes))
        self.members: list[list[int]] = []
        self.w1 = nn.ParameterList()
        start = 0
        for j, d in enumerate(self.block_sizes):
            members = [c for c, bits in enumerate(self.coalitions) if bits >> j & 1]
            self.members.append(members)
            self.w1.append(nn.Parameter(w1_full[members, start:start + d].clone()))
            start += d
        self.b1, self.w2, self.b2 = nn.Parameter(b1), nn.Parameter(w2), nn.Parameter(b2)
        self.w3, self.b3 = nn.Parameter(w3), nn.Parameter(b3)

    def coalition_rows(self) -> list[list[int]]:
        """For each parameter (in ``parameters()`` order), the coalition of each row of its first dimension."""
        everyone = list(range(len(self.coalitions)))
        return [self.members[int(name.split(".")[1])] if name.startswith("w1.") else everyone
                for name, _ in self.named_parameters()]

    @staticmethod
    def _pick(param: torch.Tensor, rows: list[int]) -> torch.Tensor:
        """Rows of a stacked parameter through a 0/1 matmul (exact; its backward is a matmul, not the
        accumulating scatter of an indexing backward, so it stays deterministic on CUDA)."""
        pick = torch.as_tensor(np.eye(param.shape[0], dtype=np.float32)[rows], dtype=param.dtype, device=param.device)
        return (pick @ param.reshape(param.shape[0], -1)).reshape(len(rows), *param.shape[1:])

    def forward(self, inputs: torch.Tensor, which: Sequence[int] | None = None) -> torch.Tensor:
        """Logits (C', n, K) of the coalitions at positions ``which`` (default: all) on ``inputs`` (n, D)."""
        n = inputs.shape[0]
        every = which is None
        rows = list(range(len(self.coalitions))) if every else [int(i) for i in which]
        position = {c: r for r, c in enumerate(rows)}

        def pick(param: torch.Tensor) -> torch.Tensor:
            return param if every else self._pick(param, rows)

        h = pick(self.b1)
        start = 0
        for j, d in enumerate(self.block_sizes):
            cols = [col for col, c in enumerate(self.members[j]) if c in position]
            if cols:
                w = self.w1[j] if len(cols) == len(self.members[j]) else self._pick(self.w1[j], cols)
                part = torch.matmul(inputs[:, start:start + d], w)  # (C_j', n, H)
                into = np.zeros((len(rows), len(cols)), dtype=np.float32)
                into[[position[self.members[j][col]] for col in cols], np.arange(len(cols))] = 1.0
                into = torch.as_tensor(into, dtype=inputs.dtype, device=inputs.device)
                h = h + (into @ part.reshape(len(cols), -1)).reshape(len(rows), n, -1)
            start += d
        h = torch.relu(h)
        h = torch.relu(torch.bmm(h, pick(self.w2)) + pick(self.b2))
        return torch.bmm(h, pick(self.w3)) + pick(self.b3)


class _PerCoalitionStopping:
    """Early stopping per coalition inside one ``fit_network`` call: each coalition keeps its own best
    validation accuracy, stale counter and best weights, and stops when it has not improved for ``patience``
    epochs. The score handed to the trainer is the running count of improvements, so the trainer stops
    exactly when every coalition has stopped (or at max_epochs)."""

    def __init__(self, bank: CoalitionMLPs, val_inputs: torch.Tensor, val_y: torch.Tensor, patience: int) -> None:
        self.bank, self.val_inputs, self.val_y, self.patience = bank, val_inputs, val_y, patience
        c = len(bank.coalitions)
        dev = val_inputs.device
        self.best = torch.full((c,), -math.inf, device=dev)
        self.stale = torch.zeros(c, dtype=torch.long, device=dev)
        self.active = torch.ones(c, dtype=torch.bool, device=dev)
        self.improvements = 0
        self.rows = [torch.as_tensor(r, dtype=torch.long, device=dev) for r in bank.coalition_rows()]
        self.best_params = [p.detach().clone() for p in bank.parameters()]
        self.active_log: list[int] = []

    def active_rows(self) -> list[int] | None:
        """Positions of the coalitions still training (None: all of them). Stopped coalitions are left out of
        the forward pass: their best weights are kept aside, and the others' gradients do not depend on them."""
        if bool(self.active.all()):
            return None
        return [int(i) for i in torch.nonzero(self.active).flatten().tolist()]

    @torch.no_grad()
    def __call__(self) -> float:
        which = self.active_rows()
        rows = list(range(len(self.bank.coalitions))) if which is None else which
        improved = torch.zeros_like(self.active)
        if rows:
            logits = self.bank(self.val_inputs, which)
            acc = torch.full_like(self.best, -math.inf)
            acc[torch.as_tensor(rows, device=acc.device)] = (
                logits.argmax(dim=2) == self.val_y.unsqueeze(0)).float().mean(dim=1)
            improved = self.active & (acc > self.best)
            self.best = torch.where(improved, acc, self.best)
        self.stale = torch.where(improved, torch.zeros_like(self.stale), self.stale + 1)
        if bool(improved.any()):
            for p, keep, prow in zip(self.bank.parameters(), self.best_params, self.rows, strict=True):
                sel = improved[prow].reshape(-1, *([1] * (p.dim() - 1)))
                keep.copy_(torch.where(sel, p.detach(), keep))
        self.improvements += int(improved.sum())
        self.active &= self.stale < self.patience
        self.active_log.append(int(self.active.sum()))
        return float(self.improvements)

    @torch.no_grad()
    def restore(self) -> None:
        for p, keep in zip(self.bank.parameters(), self.best_params, strict=True):
            p.copy_(keep)


class MaskedSurrogate(nn.Module):
    """The fast mode's single model: one shared encoder per modality (``make_encoder``), each embedding times
    its presence bit, concatenated with the mask, then a two-layer head. Trained with random modality masking;
    a coalition is evaluated by masking everything outside it."""

    def __init__(self, info: DatasetInfo, width: int) -> None:
        super().__init__()
        self.names = [m.name for m in info.modalities]
        self.encoders = nn.ModuleDict({m.name: make_encoder(m, width) for m in info.modalities})
        m = len(info.modalities)
        self.head = nn.Sequential(nn.Linear(m * width + m, width), nn.ReLU(), nn.Linear(width, info.n_classes))

    def embed(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.stack([self.encoders[k](x[k]) for k in self.names], dim=1)  # (n, M, H)

    def head_logits(self, emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w = mask.to(emb.dtype)
        return self.head(torch.cat([(emb * w.unsqueeze(2)).flatten(1), w], dim=1))

    def forward(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        return self.head_logits(self.embed(zero_fill(x, mask)), mask)


# ---------------------------------------------------------------------------------------------------
# The method.
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConformalShapleyHparams:
    #: [SRC] miscoverage level (code default 0.05).
    alpha: float = 0.05
    #: [SRC] share of the (labelled) training split used as the calibration part I2 (draft and code: 1/2).
    calibration_fraction: float = 0.5
    #: [INF] maximum number of modalities selected by predict_proba. The paper sweeps q = 0..M and plots the
    #: path; None (default) takes the smallest q with the best validation accuracy on that path (M when
    #: ``selection_path`` is off).
    q: int | None = None
    #: [SRC] which end of the conditional interval ranks the modalities: "lower" (the theory, default) or
    #: "upper" (what ``conditional_calibrate`` in the code fits and selects on).
    selection_bound: str = hparam("lower", Choice(("lower", "upper")))
    #: [SRC]/[INF] coalition models: "per_coalition" (one model per subset, [SRC]) or "masked_surrogate"
    #: (the fast mode: one model trained with random modality masking, coalitions evaluated by masking, [INF]).
    coalition_models: str = "per_coalition"
    #: [INF] Shapley computation: "auto" (exact up to ``exact_max_modalities``, otherwise permutation
    #: sampling with lazily trained coalitions), "exact" or "permutation".
    shapley_estimator: str = "auto"
    #: [INF] largest M for exact enumeration under "auto" (spec: M <= 6).
    exact_max_modalities: int = 6
    #: [INF] permutations T of the permutation estimator.
    n_permutations: int = 32
    #: [INF] masked-surrogate training: probability that a present modality is kept in a training sample.
    surrogate_keep_prob: float = 0.5
    #: [SRC] the MNIST run's PCA dimension of Omega (centred SVD / PCA of the input).
    omega_dim: int = hparam(2, IntUniform(1, 8))
    #: [INF] divide each Omega component by its standard deviation (the draft and code do not).
    omega_whiten: bool = False
    #: [SRC] lambda1 (kernel term) and lambda2 (Omega term); the MNIST run fixes both to 1e-2.
    lambda1: float = hparam(1e-2, LogUniform(1e-3, 1.0))
    lambda2: float = hparam(1e-2, LogUniform(1e-3, 1.0))
    #: [SRC] tune (lambda1, lambda2) by K-fold CV on I2 over ``lambda_grid`` (off: the MNIST setting).
    tune_lambdas: bool = False
    #: [SRC] the grid of both lambdas.
    lambda_grid: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0)
    #: [SRC] folds of the lambda CV (the draft says 5, the code 3).
    cv_folds: int = 5
    #: [SRC] jitter added to the kernel matrix (here the landmark kernel of the Nystroem map).
    kernel_jitter: float = 1e-2
    #: [INF] Nystroem landmarks (calibration points) of the kernel term; >= n_cal gives the representer span.
    nystroem_components: int = 50
    #: [INF] unpenalised intercept in the quantile regression (without it, heavy regularisation shrinks h to
    #: 0 instead of to the marginal quantile).
    qr_intercept: bool = True
    #: [INF] also fit the levels of every q in 1..M on I2 and record the validation selection path.
    selection_path: bool = True
    #: [SRC] ranks of Algorithm 1: "ceil" (draft and code) or "floor" (exact >= 1 - alpha coverage).
    lower_rank: str = "ceil"
    #: [SRC] the code clamps u to n_cal; False (default) gives +inf when u > n_cal, as the guarantee needs.
    clamp_upper: bool = False
    #: [SRC] probabilities are clipped to [clip, 1] before the log loss.
    clip: float = 1e-7


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
    by the (sorted) lower bound, keep the positive ones, take the top min(q, #positive) and predict with that
    coalition's model (the trivial predictor when none is selected).

    Hyperparameters ([SRC]: from the draft or the authors' code; [INF]: reconstructed, the spec's default):

    - ``alpha`` = 0.05 [SRC]; ``calibration_fraction`` = 0.5 [SRC]; ``clip`` = 1e-7 [SRC];
    - ``q`` = None [INF]: the smallest q with the best validation accuracy on the selection path q = 0..M
      (M when ``selection_path`` is False); ``selection_path`` = True [INF];
    - ``selection_bound`` = "lower" [SRC, theory] ("upper" is what the code fits and selects on);
    - ``coalition_models`` = "per_coalition" [SRC]; "masked_surrogate" is the fast mode [INF];
    - ``shapley_estimator`` = "auto" [INF]: exact for M <= ``exact_max_modalities`` = 6 [INF], otherwise
      permutation sampling with ``n_permutations`` = 32 [INF] and lazily trained coalitions;
      ``surrogate_keep_prob`` = 0.5 [INF];
    - ``omega_dim`` = 2 [SRC, the MNIST run's PCA dimension]; ``omega_whiten`` = False [INF];
    - ``lambda1`` = ``lambda2`` = 1e-2 [SRC, MNIST]; ``tune_lambdas`` = False [SRC, MNIST];
      ``lambda_grid`` = (1e-3, 1e-2, 1e-1, 1) [SRC]; ``cv_folds`` = 5 [SRC, draft; the code uses 3];
    - ``kernel_jitter`` = 1e-2 [SRC]; ``nystroem_components`` = 50 [INF]; ``qr_intercept`` = True [INF];
    - ``lower_rank`` = "ceil" [SRC]; ``clamp_upper`` = False [SRC, the theory; the code clamps].

    Other [INF] parts without a switch: the coalition learner is the early_fusion method's network with the
    shared budget (the paper's learner is arbitrary), the validation split decides early stopping (per
    coalition), Omega is computed from the zero-filled (= training-mean imputed: the data are standardised)
    concatenated inputs, one set of Nystroem landmarks serves every modality and level, the lambda CV uses the
    draft's objective (the mean selected Shapley mass), and missing modalities at test time are handled by
    restricting the candidates (no Mondrian calibration per missingness pattern).

    ``extras()`` records the marginal intervals and p-values, the validation coverage (marginal and
    conditional) and the validation selection path (accuracy against q), and the selected coalitions of the
    most recent and the largest ``predict_proba`` call; ``evaluate_extras(x, mask)`` returns the per-sample
    arrays from which a runner holding the test labels scores the test-split coverage and selection path."""

    name = "conformal_shapley"
    Hparams = ConformalShapleyHparams

    def __init__(self, info: DatasetInfo, hparams: ConformalShapleyHparams | None = None) -> None:
        super().__init__(info, hparams)
        hp = self.hparams
        if hp.selection_bound not in ("lower", "upper"):
            raise ValueError(f"selection_bound must be 'lower' or 'upper', got {hp.selection_bound!r}")
        if hp.coalition_models not in ("per_coalition", "masked_surrogate"):
            raise ValueError(f"coalition_models must be 'per_coalition' or 'masked_surrogate', got "
                             f"{hp.coalition_models!r}")
        if hp.shapley_estimator not in ("auto", "exact", "permutation"):
            raise ValueError(f"shapley_estimator must be auto, exact or permutation, got {hp.shapley_estimator!r}")
        if not 0 < hp.alpha < 1 or not 0 < hp.calibration_fraction < 1:
            raise ValueError("alpha and calibration_fraction must lie in (0, 1)")
        self.m = len(info.modalities)
        #: q given, or M until ``fit`` picks it on the validation selection path (q=None, selection_path=True)
        self.q_fixed = self.m if hp.q is None else max(0, min(int(hp.q), self.m))
        self.q = self.q_fixed
        self.estimator = hp.shapley_estimator
        if self.estimator == "auto":
            self.estimator = "exact" if self.m <= hp.exact_max_modalities else "permutation"
        self.device = torch.device("cpu")
        self.coalition_nets = nn.ModuleList()
        self.surrogate: MaskedSurrogate | None = None
        self._where: dict[int, tuple[int, int]] = {}
        self._last_call: dict[str, Any] | None = None
        self._largest_call: dict[str, Any] | None = None
        self._diagnostics: dict[str, Any] = {}

    # -- inputs --------------------------------------------------------------------------------------

    def _flat(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        n = next(iter(x.values())).shape[0]
        return torch.cat([x[m.name].reshape(n, -1) for m in self.info.modalities], dim=1)

    def _net_inputs(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """Per modality, its flattened features then its mask entry (the coalition networks' input blocks)."""
        n = mask.shape[0]
        parts = []
        for j, m in enumerate(self.info.modalities):
            parts += [x[m.name].reshape(n, -1), mask[:, j : j + 1].to(x[m.name].dtype)]
        return torch.cat(parts, dim=1)

    def _coalition_seed(self, bits: int) -> int:
        return key_to_int("conformal_shapley", "coalition", self.seed, bits) % (2**62)

    # -- coalition models ----------------------------------------------------------------------------

    def _train_bank(self, coalitions: Sequence[int], ctx: TrainContext) -> None:
        bank = CoalitionMLPs(coalitions, [m.size + 1 for m in self.info.modalities], ctx.budget.width,
                             self.info.n_classes, [self._coalition_seed(b) for b in coalitions]).to(self.device)
        train = self._fit_part
        inputs = self._net_inputs(train.x, train.mask)
        tensor_split = Split(x={"_inputs": inputs}, mask=torch.ones(len(train), 1, dtype=torch.bool,
                                                                   device=self.device),
                             y=train.y, labeled=train.labeled, ids=train.ids)
        val = self._val_split
        stopper = _PerCoalitionStopping(bank, self._net_inputs(val.x, val.mask)[val.labeled], val.y[val.labeled],
                                        ctx.budget.patience)

        def loss(batch: Batch) -> torch.Tensor:  # the sum over coalitions of each one's mean cross-entropy
            logits = bank(batch.x["_inputs"], stopper.active_rows())
            n_c = logits.shape[0]
            return n_c * cross_entropy(logits.reshape(-1, logits.shape[2]), batch.y.repeat(n_c))

        fit_network(bank, loss, tensor_split, ctx, val_score=stopper)
        self._active_log = stopper.active_log
        stopper.restore()
        bank.eval()
        pos = len(self.coalition_nets)
        self.coalition_nets.append(bank)
        for i, bits in enumerate(coalitions):
            self._where[int(bits)] = (pos, i)

    def _ensure_trained(self, coalitions: Sequence[int]) -> None:
        """Lazily train coalitions that are not trained yet, each alone with a generator keyed on the
        coalition, so that a coalition's model does not depend on when it was first needed."""
        if self.surrogate is not None:
            return
        for bits in sorted({int(b) for b in coalitions} - set(self._where) - {0}):
            seed = self._coalition_seed(bits)
            ctx = TrainContext(self.device, seed, torch_generator(seed), self.ctx.budget, self.ctx.clock)
            with torch.enable_grad():
                self._train_bank([bits], ctx)
            self.n_lazy += 1

    def _train_surrogate(self, ctx: TrainContext) -> None:
        self.surrogate = MaskedSurrogate(self.info, ctx.budget.width).to(self.device)
        keep_prob = self.hparams.surrogate_keep_prob
        val = self._val_split

        def loss(batch: Batch) -> torch.Tensor:
            keep = torch.rand(batch.mask.shape, generator=ctx.generator).to(self.device) < keep_prob
            mask = batch.mask & keep
            return cross_entropy(self.surrogate(batch.x, mask), batch.y)

        def score() -> float:
            with torch.no_grad():
                pred = self.surrogate(val.x, val.mask).argmax(dim=1)
            sel = val.labeled
            return float((pred[sel] == val.y[sel]).float().mean()) if bool(sel.any()) else 0.0

        fit_network(self.surrogate, loss, self._fit_part, ctx, val_score=score)
        self.surrogate.eval()

    @torch.no_grad()
    def _log_proba(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor, coalitions: Sequence[int]) -> torch.Tensor:
        """log-probabilities (len(coalitions), n, K) of the coalition models on zero-filled inputs; the empty
        coalition is the trivial predictor. Probabilities are clipped to [clip, 1] first."""
        n = mask.shape[0]
        out = []
        if self.surrogate is not None:
            xz = zero_fill(x, mask)
            emb = self.surrogate.embed(xz)
            for bits in coalitions:
                if bits == 0:
                    out.append(self._trivial_log_proba(n))
                    continue
                sub = mask & torch.tensor([bool(bits >> j & 1) for j in range(self.m)], device=mask.device)
                out.append(torch.log_softmax(self.surrogate.head_logits(emb, sub), dim=1))
        else:
            self._ensure_trained(coalitions)
            inputs = self._net_inputs(zero_fill(x, mask), mask)
            by_stack: dict[int, list[int]] = {}
            for bits in coalitions:
                if bits != 0:
                    by_stack.setdefault(self._where[int(bits)][0], []).append(self._where[int(bits)][1])
            computed = {}
            for pos, which in by_stack.items():
                logits = self.coalition_nets[pos](inputs, which)
                for i, row in zip(which, logits, strict=True):
                    computed[(pos, i)] = torch.log_softmax(row, dim=1)
            out = [self._trivial_log_proba(n) if bits == 0 else computed[self._where[int(bits)]]
                   for bits in coalitions]
        logp = torch.stack(out) if out else torch.zeros(0, n, self.info.n_classes, device=mask.device)
        return torch.log(torch.clamp(logp.exp(), min=self.hparams.clip, max=1.0))

    def _trivial_log_proba(self, n: int) -> torch.Tensor:
        return torch.log(self.trivial.clamp(min=1e-30)).unsqueeze(0).expand(n, -1)

    def _values(self, x, mask, y: torch.Tensor, coalitions: Sequence[int]) -> dict[int, np.ndarray]:
        """val_i(S) = l(y_i, mu_empty) - l(y_i, mu_S(x_i)) for each coalition (log loss, clipped)."""
        logp = self._log_proba(x, mask, [0, *coalitions])
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

    def _z(self, omega: np.ndarray) -> np.ndarray:
        return self.nystroem(omega)

    def _omega_of(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> np.ndarray:
        return self.omega(self._flat(zero_fill(x, mask)).double().cpu().numpy())

    def _levels(self, q: int) -> tuple[float, float]:
        a = self.hparams.alpha / (2 * q)
        return a, 1.0 - a

    def _fits(self, q: int, end: str) -> list[QuantileFit]:
        """h_j^tau for every modality j at the lower (tau = alpha/2q) or upper (1 - alpha/2q) level; cached."""
        key = (q, end)
        if key not in self.level_fits:
            lo, hi = self._levels(q)
            tau = lo if end == "lower" else hi
            self.level_fits[key] = [
                fit_kernel_quantile(self.z_cal, self.omega_cal, self.phi_cal[:, j], tau, self.lambdas[0],
                                    self.lambdas[1], self.hparams.qr_intercept)
                for j in range(self.m)]
        return self.level_fits[key]

    def _predict_fits(self, fits: list[QuantileFit], omega: np.ndarray) -> np.ndarray:
        z = self._z(omega)
        return np.stack([f.predict(z, omega) for f in fits], axis=1)

    def _bounds(self, q: int, omega: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The conditional intervals C_j(x) (n, M) at the Bonferroni levels of q, sorted so that they nest."""
        a = self._predict_fits(self._fits(q, "lower"), omega)
        b = self._predict_fits(self._fits(q, "upper"), omega)
        return np.minimum(a, b), np.maximum(a, b)

    def _select(self, q: int, omega: np.ndarray, available: np.ndarray) -> np.ndarray:
        """Selected coalition bits per sample: ranked by h_j^{alpha/2q}(x) (or h_j^{1-alpha/2q} with
        selection_bound="upper"), positive scores only, present modalities only, at most q."""
        if q == 0:
            return np.zeros(len(omega), dtype=np.int64)
        scores = self._predict_fits(self._fits(q, self.hparams.selection_bound), omega)
        return select_modalities(scores, available, q)

    def _tune_lambdas(self) -> tuple[tuple[float, float], list[dict[str, float]]]:
        """K-fold CV on I2, the draft's objective: the mean over held-out points of sum_{j in S_hat} phi_j."""
        hp = self.hparams
        q = max(self.q_fixed, 1)
        n = len(self.phi_cal)
        folds = np.array_split(keyed_rng("conformal_shapley", "cv", self.seed).permutation(n), hp.cv_folds)
        lo, hi = self._levels(q)
        tau = lo if hp.selection_bound == "lower" else hi
        table, best, best_score = [], (hp.lambda1, hp.lambda2), -math.inf
        for l1 in hp.lambda_grid:
            for l2 in hp.lambda_grid:
                total = 0.0
                for held in folds:
                    fit_idx = np.setdiff1d(np.arange(n), held)
                    scores = np.stack([
                        fit_kernel_quantile(self.z_cal[fit_idx], self.omega_cal[fit_idx], self.phi_cal[fit_idx, j],
                                            tau, l1, l2, hp.qr_intercept).predict(self.z_cal[held],
                                                                                  self.omega_cal[held])
                        for j in range(self.m)], axis=1)
                    sel = select_modalities(scores, np.ones_like(scores, dtype=bool), q)
                    chosen = (sel[:, None] >> np.arange(self.m)[None, :]) & 1
                    total += float((self.phi_cal[held] * chosen).sum())
                score = total / n
                table.append({"lambda1": l1, "lambda2": l2, "score": score})
                if score > best_score:
                    best, best_score = (l1, l2), score
        return best, table

    # -- fit -----------------------------------------------------------------------------------------

    def fit(self, train: Split, val: Split, ctx: TrainContext) -> None:
        hp = self.hparams
        self.device, self.ctx, self.seed = ctx.device, ctx, ctx.seed
        self.n_lazy = 0
        labeled = np.flatnonzero(train.labeled.cpu().numpy())
        perm = keyed_rng("conformal_shapley", "split", ctx.seed).permutation(labeled)
        n_cal = int(round(len(perm) * hp.calibration_fraction))
        if n_cal < 2 or n_cal >= len(perm):
            raise ValueError(f"cannot split {len(perm)} labelled training samples into a training and a "
                             f"calibration part of fraction {hp.calibration_fraction}")
        cal_idx = np.sort(perm[:n_cal])
        fit_idx = np.setdiff1d(np.arange(len(train)), cal_idx)  # I1: the rest, unlabelled samples included
        self._fit_part = train.subset(torch.as_tensor(fit_idx))
        cal = train.subset(torch.as_tensor(cal_idx))
        self.calibration_ids, self.fit_part_ids = cal.ids, self._fit_part.ids
        self._val_split = val

        y1 = self._fit_part.y[self._fit_part.labeled]
        counts = torch.bincount(y1.cpu(), minlength=self.info.n_classes).to(torch.float32)
        self.trivial = (counts / counts.sum()).to(self.device)
        self.perms = np.stack([keyed_rng("conformal_shapley", "perm", ctx.seed, t).permutation(self.m)
                               for t in range(hp.n_permutations)])

        coalitions = self._coalitions_for_shapley()
        if hp.coalition_models == "masked_surrogate":
            self._train_surrogate(ctx)
        else:
            self._train_bank(coalitions, ctx)
        n_trained_at_fit = len(self._where)

        # Pointwise Shapley values on I2, marginal intervals and p-values.
        self.phi_cal = self._shapley(self._values(cal.x, cal.mask, cal.y, coalitions), n_cal)
        self.intervals = [marginal_interval(self.phi_cal[:, j], hp.alpha, hp.lower_rank, hp.clamp_upper)
                          for j in range(self.m)]

        # Conditional quantiles on Omega(x).
        self.omega = ReducedInput(self._flat(cal.x).double().cpu().numpy(), hp.omega_dim, hp.omega_whiten)
        self.omega_cal = self.omega(self._flat(cal.x).double().cpu().numpy())
        k = min(hp.nystroem_components, n_cal)
        landmarks = keyed_rng("conformal_shapley", "nystroem", ctx.seed).choice(n_cal, size=k, replace=False)
        self.nystroem = NystroemRBF(self.omega_cal[np.sort(landmarks)], 1.0 / self.omega_cal.shape[1],
                                    hp.kernel_jitter)
        self.z_cal = self._z(self.omega_cal)
        self.lambdas, cv_table = (hp.lambda1, hp.lambda2), None
        if hp.tune_lambdas and self.q_fixed > 0:
            self.lambdas, cv_table = self._tune_lambdas()
        self.level_fits: dict[tuple[int, str], list[QuantileFit]] = {}
        self.path_qs = list(range(self.m + 1)) if hp.selection_path else [0, self.q_fixed]
        self._diagnostics = self._validation_diagnostics(val, cv_table)
        self._diagnostics["coalitions_trained_at_fit"] = n_trained_at_fit
        self._diagnostics["n_fit_part"] = len(fit_idx)
        if hp.coalition_models == "per_coalition":
            self._diagnostics["coalitions_active_per_epoch"] = self._active_log

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
            pred = self._proba_selected(vx, vmask, bits).argmax(dim=1).cpu().numpy()
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
    def _proba_selected(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor, bits: np.ndarray) -> torch.Tensor:
        """Each sample predicted by its selected coalition's model, grouped by coalition (no scatter: the groups
        are concatenated in sorted order and put back with a gather)."""
        order = np.argsort(bits, kind="stable")
        sorted_bits = bits[order]
        uniq, starts = np.unique(sorted_bits, return_index=True)
        ends = [*starts[1:], len(bits)]
        self._ensure_trained([int(b) for b in uniq])
        parts = []
        for b, s, e in zip(uniq, starts, ends, strict=True):
            rows = torch.as_tensor(order[s:e], device=mask.device)
            sub_x = {k: v[rows] for k, v in x.items()}
            parts.append(self._log_proba(sub_x, mask[rows], [int(b)])[0])
        if not parts:
            return torch.zeros(0, self.info.n_classes, device=mask.device)
        logp = torch.cat(parts)
        inverse = torch.as_tensor(np.argsort(order, kind="stable"), device=mask.device)
        return torch.softmax(logp[inverse], dim=1)

    @torch.no_grad()
    def predict_proba(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        x = zero_fill(x, mask)
        omega = self._omega_of(x, mask)
        bits = self._select(self.q, omega, mask.cpu().numpy())
        proba = self._proba_selected(x, mask, bits)
        record = {"n": int(len(bits)), "selected_bits": bits.astype(int).tolist()}
        self._last_call = record
        # the most recent of the largest calls: in the runner, the clean test split's timed calls come last
        if self._largest_call is None or record["n"] >= self._largest_call["n"]:
            self._largest_call = record
        return proba

    @torch.no_grad()
    def evaluate_extras(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> dict[str, dict[str, Any]]:
        """Per-sample arrays a runner with the labels y can score (the method never sees them):

        - ``selection_path``: kind "accuracy_by_column", ``pred`` (n, Q) predicted classes for q in
          ``columns``; accuracy of column c = mean(pred[:, c] == y).
        - ``marginal_coverage`` / ``conditional_coverage``: kind "interval_coverage", ``value_by_label``
          (n, K, M) the Shapley values the sample would have with label k, ``lower`` / ``upper`` (n, M);
          coverage of column j = mean(lower[:, j] <= value_by_label[i, y_i, j] <= upper[:, j])."""
        x = zero_fill(x, mask)
        n = mask.shape[0]
        omega = self._omega_of(x, mask)
        available = mask.cpu().numpy()
        qs = sorted(set(self.path_qs))
        preds = np.stack([self._proba_selected(x, mask, self._select(q, omega, available)).argmax(1).cpu().numpy()
                          for q in qs], axis=1)
        coalitions = self._coalitions_for_shapley()
        logp = self._log_proba(x, mask, [0, *coalitions]).double().cpu().numpy()  # (C+1, n, K)
        by_label = np.zeros((n, self.info.n_classes, self.m))
        for k in range(self.info.n_classes):
            values = {int(b): logp[i + 1, :, k] - logp[0, :, k] for i, b in enumerate(coalitions)}
            by_label[:, k, :] = self._shapley(values, n)
        lo = np.broadcast_to(np.array([iv[0] for iv in self.intervals]), (n, self.m)).copy()
        hi = np.broadcast_to(np.array([iv[1] for iv in self.intervals]), (n, self.m)).copy()
        out = {"selection_path": {"kind": "accuracy_by_column", "columns": qs, "pred": preds},
               "marginal_coverage": {"kind": "interval_coverage", "columns": list(self.info.modality_names),
                                     "value_by_label": by_label, "lower": lo, "upper": hi}}
        if self.q > 0:
            clo, chi = self._bounds(self.q, omega)
            out["conditional_coverage"] = {"kind": "interval_coverage", "columns": list(self.info.modality_names),
                                           "value_by_label": by_label, "lower": clo, "upper": chi}
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
            "coalitions_trained_lazily": int(self.n_lazy),
            "marginal_intervals": [[num(lo), num(hi)] for lo, hi in self.intervals],
            "mean_shapley": self.phi_cal.mean(axis=0).tolist(),
            "t_test_pvalues": [t_test_pvalue(self.phi_cal[:, j]) for j in range(self.m)],
            "conformal_pvalues": [conformal_pvalue(self.phi_cal[:, j]) for j in range(self.m)],
            **{k: v for k, v in diag.items() if k not in ("n_fit_part", "coalitions_trained_at_fit")},
            "last_predict_call": calls(self._last_call),
            "largest_predict_call": calls(self._largest_call),
        })
