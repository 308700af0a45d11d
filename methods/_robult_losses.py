"""Robult's losses as pure functions on tensors (spec shared/specs/robult.md, section 1.3), kept apart from
the network so that each can be tested on its own (tests/test_robult.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: The bandwidth rules of the RBF weights (``rbf_weights``): sigma^2 = scale * a statistic of the batch's
#: off-diagonal squared distances of stopgrad(S).
BANDWIDTH_RULES = ("median", "quantile")


def squared_distances(s: torch.Tensor) -> torch.Tensor:
    """Pairwise squared Euclidean distances of the rows of ``s`` (matmul form, exactly symmetric, zero diagonal)."""
    sq = (s * s).sum(dim=1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * (s @ s.T)).clamp(min=0.0)
    d2 = 0.5 * (d2 + d2.T)
    eye = torch.eye(s.shape[0], dtype=torch.bool, device=s.device)
    return d2.masked_fill(eye, 0.0)


def offdiagonal(d2: torch.Tensor) -> torch.Tensor:
    """The upper-triangle (off-diagonal) entries of a symmetric square matrix, flattened."""
    n = d2.shape[0]
    rows, cols = torch.triu_indices(n, n, 1, device=d2.device)
    return d2[rows, cols]


def median_offdiagonal(d2: torch.Tensor) -> torch.Tensor:
    """Lower median of the off-diagonal entries of a symmetric square matrix (no host sync)."""
    if d2.shape[0] < 2:
        return torch.ones((), dtype=d2.dtype, device=d2.device)
    return torch.median(offdiagonal(d2))


def quantile_offdiagonal(d2: torch.Tensor, q: float) -> torch.Tensor:
    """The ``q`` quantile (lower, no interpolation) of the off-diagonal entries; q = 0.5 is the lower median."""
    if d2.shape[0] < 2:
        return torch.ones((), dtype=d2.dtype, device=d2.device)
    return torch.quantile(offdiagonal(d2), q, interpolation="lower")


def rbf_weights(s: torch.Tensor, sigma2: float | torch.Tensor | None = None, scale: float = 1.0,
                rule: str = "median", quantile: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """(w, sigma^2): w_ab = exp(-||s_a - s_b||^2 / (2 sigma^2)) on stopgrad(s), so the weights cannot be gamed
    by shrinking distances. ``sigma2`` None: ``scale`` times the median ("median", the median heuristic) or the
    ``quantile`` quantile ("quantile") of the off-diagonal squared distances, recomputed from this batch."""
    s = s.detach()
    d2 = squared_distances(s)
    if sigma2 is None:
        if rule == "median":
            stat = median_offdiagonal(d2)
        elif rule == "quantile":
            stat = quantile_offdiagonal(d2, quantile)
        else:
            raise ValueError(f"unknown bandwidth rule {rule!r}; one of {BANDWIDTH_RULES}")
        sigma2 = scale * stat.clamp(min=1e-12)
    sigma2 = torch.as_tensor(sigma2, dtype=s.dtype, device=s.device)
    return torch.exp(-d2 / (2.0 * sigma2)), sigma2


def offdiagonal_stats(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, standard deviation) of the off-diagonal entries of ``w`` (the spec's saturation diagnostic)."""
    n = w.shape[0]
    if n < 2:
        nan = torch.full((), float("nan"), dtype=w.dtype, device=w.device)
        return nan, nan
    off = ~torch.eye(n, dtype=torch.bool, device=w.device)
    vals = w[off]
    return vals.mean(), vals.std(unbiased=False)


def pu_targets(y: torch.Tensor, labeled: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The soft target rows pi: 1 on the diagonal, 1[y_a = y_b] between two labelled samples, w_ab otherwise;
    each row normalised to sum to 1."""
    both = labeled[:, None] & labeled[None, :]
    same = (y[:, None] == y[None, :]).to(w.dtype)
    pi = torch.where(both, same, w)
    eye = torch.eye(len(y), dtype=torch.bool, device=w.device)
    pi = pi.masked_fill(eye, 1.0)
    return pi / pi.sum(dim=1, keepdim=True)


def soft_pu_contrastive(z: torch.Tensor, s: torch.Tensor, y: torch.Tensor, labeled: torch.Tensor,
                        present: torch.Tensor, w: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_lb, L_ulb): the soft-target InfoNCE -sum_b pi_ab log softmax_b(z_a . s_b / tau), summed over modalities.

    ``z``: the anchors Z_i, (B, p) for one modality or (M, B, p); ``s``: the candidates S, (B, p); both
    L2-normalised. ``present``: (B,) or (B, M), the anchors that count. Per modality,
    L_lb: labelled anchors, their mass on labelled candidates (averaged over labelled anchors);
    L_ulb: unlabelled anchors, all their mass (averaged over unlabelled anchors), plus the labelled anchors'
    mass on unlabelled candidates (averaged over labelled anchors). So L_lb + L_ulb is the mean row loss over
    labelled anchors plus the mean row loss over unlabelled anchors."""
    if z.dim() == 2:
        z, present = z.unsqueeze(0), present.reshape(-1, 1)
    logp = torch.log_softmax(z @ s.T / tau, dim=2)  # (M, B, B)
    terms = -pu_targets(y, labeled, w) * logp
    lab = labeled.to(terms.dtype)
    to_labelled = terms @ lab  # (M, B)
    to_unlabelled = terms @ (1.0 - lab)
    la = (present & labeled[:, None]).T.to(terms.dtype)  # (M, B)
    ua = (present & ~labeled[:, None]).T.to(terms.dtype)
    n_la, n_ua = la.sum(dim=1).clamp(min=1.0), ua.sum(dim=1).clamp(min=1.0)
    l_lb = (la * to_labelled).sum(dim=1) / n_la
    l_ulb = (ua * (to_labelled + to_unlabelled)).sum(dim=1) / n_ua + (la * to_unlabelled).sum(dim=1) / n_la
    return l_lb.sum(), l_ulb.sum()


def supervised_contrastive(z: torch.Tensor, s: torch.Tensor, y: torch.Tensor, labeled: torch.Tensor,
                           present: torch.Tensor, tau: float) -> torch.Tensor:
    """The ablation of the soft-PU term: supervised contrastive (SupCon's mean over positives) between Z_i and
    S on the labelled samples only, summed over modalities. Anchors and candidates are the labelled samples;
    the positives of anchor a are the candidates of its class (itself included), each with mass
    1/|positives|; unlabelled samples enter neither the softmax nor the targets. The same as
    ``soft_pu_contrastive``'s L_lb on the labelled sub-batch. Shapes as in ``soft_pu_contrastive``."""
    if z.dim() == 2:
        z, present = z.unsqueeze(0), present.reshape(-1, 1)
    # candidates: the labelled samples (every sample when there is none: then no anchor counts, and no row of
    # the softmax is all -inf, which would put NaN into the backward pass)
    candidate = labeled | ~labeled.any()
    logits = (z @ s.T / tau).masked_fill(~candidate[None, None, :], float("-inf"))
    logp = torch.log_softmax(logits, dim=2)
    both = labeled[:, None] & labeled[None, :]
    pi = (both & (y[:, None] == y[None, :])).to(z.dtype)
    pi = pi / pi.sum(dim=1, keepdim=True).clamp(min=1.0)
    zero = torch.zeros((), dtype=z.dtype, device=z.device)
    rows = -torch.where(pi > 0, pi * logp, zero).sum(dim=2)  # (M, B); 0 * -inf never formed
    la = (present & labeled[:, None]).T.to(z.dtype)
    return ((la * rows).sum(dim=1) / la.sum(dim=1).clamp(min=1.0)).sum()


def reconstruction_loss(h: torch.Tensor, h_hat: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """sum_i a_i ||stopgrad(H_i) - r_i(...)||^2 / d, averaged over the batch; ``h``, ``h_hat``: (M, B, d),
    ``present``: (B, M). The decoder's input (stopgrad(Z_i); U_i) is the caller's (``RobultNet.reconstruct``)."""
    err = ((h.detach() - h_hat) ** 2).mean(dim=2)  # (M, B), the squared norm over d
    return (err * present.T.to(err.dtype)).sum(dim=0).mean()


def orthogonality_penalty(z: torch.Tensor, u: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """sum_i ||Z_i^T U_i||_F^2 / B_n on L2-normalised rows, the absent rows left out; (M, B, .) inputs."""
    a = present.T.unsqueeze(2).to(z.dtype)
    zn, un = F.normalize(z, dim=2) * a, F.normalize(u, dim=2) * a
    cross = zn.transpose(1, 2) @ un  # (M, p, pu)
    return ((cross**2).sum(dim=(1, 2)) / a.sum(dim=(1, 2)).clamp(min=1.0)).sum()
