"""Split-conformal intervals, p-values and the kernel quantile regression of conformal_shapley (Chandy et al.):
marginal intervals of one modality's calibration Shapley values (Algorithm 1), the reduced input Omega(x),
a Nystroem RBF feature map and the conditional quantiles h_j^tau(Omega(x)) fitted on them, with the lambda CV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats
from sklearn.linear_model import QuantileRegressor

from ._shapley import select_modalities


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


class ConditionalQuantiles:
    """The conditional quantiles h_j^tau(Omega(x)) of every modality's calibration Shapley values at the
    Bonferroni levels of a q (tau = alpha/2q and 1 - alpha/2q), fitted on first use and cached."""

    def __init__(self, nystroem: NystroemRBF, omega_cal: np.ndarray, phi_cal: np.ndarray, alpha: float,
                 lambdas: tuple[float, float], intercept: bool) -> None:
        self.nystroem, self.omega_cal, self.phi_cal = nystroem, omega_cal, phi_cal
        self.z_cal = nystroem(omega_cal)
        self.alpha, self.lambdas, self.intercept = alpha, lambdas, intercept
        self.m = phi_cal.shape[1]
        self.cache: dict[tuple[int, str], list[QuantileFit]] = {}

    def levels(self, q: int) -> tuple[float, float]:
        a = self.alpha / (2 * q)
        return a, 1.0 - a

    def fits(self, q: int, end: str) -> list[QuantileFit]:
        """h_j^tau for every modality j at the lower (tau = alpha/2q) or upper (1 - alpha/2q) level."""
        key = (q, end)
        if key not in self.cache:
            lo, hi = self.levels(q)
            tau = lo if end == "lower" else hi
            self.cache[key] = [
                fit_kernel_quantile(self.z_cal, self.omega_cal, self.phi_cal[:, j], tau, self.lambdas[0],
                                    self.lambdas[1], self.intercept)
                for j in range(self.m)]
        return self.cache[key]

    def predict(self, q: int, end: str, omega: np.ndarray) -> np.ndarray:
        """h_j^tau(x) (n, M) at one end's level of q."""
        fits = self.fits(q, end)
        z = self.nystroem(omega)
        return np.stack([f.predict(z, omega) for f in fits], axis=1)

    def bounds(self, q: int, omega: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The conditional intervals C_j(x) (n, M) at the Bonferroni levels of q, sorted so that they nest."""
        a = self.predict(q, "lower", omega)
        b = self.predict(q, "upper", omega)
        return np.minimum(a, b), np.maximum(a, b)


def tune_lambdas(z: np.ndarray, omega: np.ndarray, phi: np.ndarray, tau: float, q: int, grid: tuple[float, ...],
                 folds: list[np.ndarray], default: tuple[float, float],
                 intercept: bool) -> tuple[tuple[float, float], list[dict[str, float]]]:
    """K-fold CV of (lambda1, lambda2) over ``grid`` x ``grid`` on the calibration part, the draft's objective:
    the mean over held-out points of sum_{j in S_hat} phi_j (S_hat: the top q by h_j^tau). Returns the best pair
    (``default`` when no pair scores above -inf) and the table of scores."""
    n, m = phi.shape
    table, best, best_score = [], default, -math.inf
    for l1 in grid:
        for l2 in grid:
            total = 0.0
            for held in folds:
                fit_idx = np.setdiff1d(np.arange(n), held)
                scores = np.stack([
                    fit_kernel_quantile(z[fit_idx], omega[fit_idx], phi[fit_idx, j], tau, l1, l2,
                                        intercept).predict(z[held], omega[held])
                    for j in range(m)], axis=1)
                sel = select_modalities(scores, np.ones_like(scores, dtype=bool), q)
                chosen = (sel[:, None] >> np.arange(m)[None, :]) & 1
                total += float((phi[held] * chosen).sum())
            score = total / n
            table.append({"lambda1": l1, "lambda2": l2, "score": score})
            if score > best_score:
                best, best_score = (l1, l2), score
    return best, table
