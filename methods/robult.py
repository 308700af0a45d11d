"""Robult: redundant (shared) plus modality-specific (unique) features, a soft positive-unlabelled
contrastive loss, a latent reconstruction loss, semi-supervised training and missing modalities at test time.

Implements /work/shared/specs/robult.md. The paper's full text, code and numbers were not reachable, so
most of the form is reconstructed ([INF]); every [INF] choice is a field of ``RobultHparams``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.contracts import DatasetInfo, Split, TrainContext
from benchmark.hparams import Choice, LogUniform, Range, Uniform, hparam
from benchmark.training import Batch, fit_network

from ._blocks import TorchMethod, cross_entropy, make_encoder

#: How many training samples (the first ones of the split, no randomness) the per-epoch diagnostics use.
DIAGNOSTIC_SAMPLES = 256
#: A U dimension whose standard deviation falls below this counts as collapsed (spec 1.8).
COLLAPSE_STD = 1e-3
#: The diagnostics are kept below this many characters of JSON (the record's budget is 20 KB).
EXTRAS_MAX_CHARS = 19_000


POSITIVE = Range(0, None, low_open=True)
NON_NEGATIVE = Range(0, None)


@dataclass(frozen=True)
class RobultHparams:
    """Every field is [INF] (spec shared/specs/robult.md; the paper's text was not reachable)."""

    proj_dim: int = hparam(64, Choice((32, 64, 128)), source="INF", allowed=Range(1, None),
                           doc="p, the width of the redundant features Z_i and of S = g_0(H_0) (spec: 64)")
    unique_dim: int = hparam(64, Choice((32, 64, 128)), source="INF", allowed=Range(1, None),
                             doc="the width of the unique features U_i (spec: the same p = 64; a larger one is a "
                                 "listed remedy)")
    tau: float = hparam(0.1, LogUniform(0.05, 0.5), source="INF", allowed=POSITIVE,
                        doc="the temperature of the soft PU contrastive loss (spec: 0.1)")
    bandwidth_scale: float = hparam(1.0, LogUniform(0.1, 2.0), source="INF", allowed=POSITIVE,
                                    doc="sigma^2 = bandwidth_scale * the median of the batch's off-diagonal squared "
                                        "distances of stopgrad(S), recomputed every batch (spec: the median "
                                        "heuristic, scale 1)")
    lambda_lb: float = hparam(1.0, LogUniform(0.1, 3.0), source="INF", allowed=NON_NEGATIVE,
                              doc="weight of the labelled part of the soft PU loss (spec: 1)")
    lambda_ulb: float = hparam(1.0, LogUniform(0.1, 3.0), source="INF", allowed=NON_NEGATIVE,
                               doc="weight of the unlabelled part of the soft PU loss (spec: 1)")
    lambda_rec: float = hparam(1.0, LogUniform(0.1, 3.0), source="INF", allowed=NON_NEGATIVE,
                               doc="weight of the latent reconstruction loss (spec: 1)")
    lambda_orth: float = hparam(0.0, Choice((0.0, 0.1, 1.0)), source="INF", allowed=NON_NEGATIVE,
                                doc="weight of the optional orthogonality penalty ||Z_i^T U_i||_F^2 / B_n (spec: "
                                    "off, 0)")
    detach_z_in_rec: bool = hparam(False, Choice((False, True)), source="INF",
                                   doc="detach Z_i inside the decoder r_i, so L_rec trains only the unique branch (a "
                                       "collapse remedy in the spec; the paper summary in shared/papers says L_rec "
                                       "reaches only the modality-specific branches); off")
    labelled_share: float = hparam(0.25, Choice((0.125, 0.25, 0.5)), source="INF",
                                   allowed=Range(0, 1, low_open=True, high_open=True),
                                   doc="share of each step's batch drawn from the labelled samples when some "
                                       "training labels are missing: B_l = round(share * batch_size), B_u = "
                                       "batch_size - B_l (spec: B_l = 32, B_u = 96, 0.25 of 128)")
    class_balanced: bool = hparam(True, source="INF",
                                  doc="draw the labelled part of each step with a class-balanced sampler (spec: on)")
    modality_dropout: bool = hparam(False, Choice((False, True)), source="INF",
                                    doc="training-time modality dropout on the head input only, at least one "
                                        "modality kept (spec: off)")
    modality_dropout_p: float = hparam(0.3, Uniform(0.1, 0.5), source="INF", allowed=Range(0, 1),
                                       doc="per-modality drop probability when modality_dropout is on (spec: 0.3)")
    missing_redundant: str = hparam("mean_z", Choice(("mean_z", "fusion_masked")), source="INF",
                                    allowed=("mean_z", "fusion_masked"),
                                    doc='R when a modality is missing: "mean_z" (the mean of the available Z_i; '
                                        'spec) or "fusion_masked" (the ablation: S from f_0 fed with the mask)')
    fusion_mask_input: bool = hparam(True, source="INF",
                                     doc="feed the mask a to the fusion network f_0 besides the masked H_i (spec: on)")
    normalized_redundant: bool = hparam(True, Choice((True, False)), source="INF",
                                        doc="the head takes the L2-normalised S / Z_i as R (the space the "
                                            "contrastive loss aligns them in), so the mean of the Z_i can stand in "
                                            "for S (not in the spec; off = raw g_0 outputs)")
    head_hidden: int = hparam(0, Choice((0, 64)), source="INF", allowed=NON_NEGATIVE,
                              doc="hidden width of the task head c; 0 = a linear head (not in the spec)")


def _mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    """The 2-layer MLP of g_0 ([INF] spec: 2 layers; hidden width = the latent width d)."""
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Linear(d_hidden, d_out))


class GroupedMLP(nn.Module):
    """M independent 2-layer MLPs (one per modality: g_i, r_i) run as batched matmuls on (M, B, d_in) input;
    initialised like ``nn.Linear`` (uniform, bound 1/sqrt(fan_in))."""

    def __init__(self, n_groups: int, d_in: int, d_hidden: int, d_out: int) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(n_groups, d_in, d_hidden))
        self.b1 = nn.Parameter(torch.empty(n_groups, 1, d_hidden))
        self.w2 = nn.Parameter(torch.empty(n_groups, d_hidden, d_out))
        self.b2 = nn.Parameter(torch.empty(n_groups, 1, d_out))
        for p, fan_in in ((self.w1, d_in), (self.b1, d_in), (self.w2, d_hidden), (self.b2, d_hidden)):
            nn.init.uniform_(p, -1.0 / math.sqrt(fan_in), 1.0 / math.sqrt(fan_in))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.b2, torch.relu(torch.baddbmm(self.b1, x, self.w1)), self.w2)


# --------------------------------------------------------------------------------------------------
# The losses, as pure functions (tested on their own in tests/test_robult.py).
# --------------------------------------------------------------------------------------------------


def squared_distances(s: torch.Tensor) -> torch.Tensor:
    """Pairwise squared Euclidean distances of the rows of ``s`` (matmul form, exactly symmetric, zero diagonal)."""
    sq = (s * s).sum(dim=1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * (s @ s.T)).clamp(min=0.0)
    d2 = 0.5 * (d2 + d2.T)
    eye = torch.eye(s.shape[0], dtype=torch.bool, device=s.device)
    return d2.masked_fill(eye, 0.0)


def median_offdiagonal(d2: torch.Tensor) -> torch.Tensor:
    """Lower median of the off-diagonal entries of a symmetric square matrix (its upper triangle; no sync)."""
    n = d2.shape[0]
    if n < 2:
        return torch.ones((), dtype=d2.dtype, device=d2.device)
    rows, cols = torch.triu_indices(n, n, 1, device=d2.device)
    return torch.median(d2[rows, cols])


def rbf_weights(s: torch.Tensor, sigma2: float | torch.Tensor | None = None,
                scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(w, sigma^2): w_ab = exp(-||s_a - s_b||^2 / (2 sigma^2)) on stopgrad(s). ``sigma2`` None: ``scale`` times
    the median of the off-diagonal squared distances (the median heuristic)."""
    s = s.detach()
    d2 = squared_distances(s)
    if sigma2 is None:
        sigma2 = scale * median_offdiagonal(d2).clamp(min=1e-12)
    sigma2 = torch.as_tensor(sigma2, dtype=s.dtype, device=s.device)
    return torch.exp(-d2 / (2.0 * sigma2)), sigma2


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


def reconstruction_loss(h: torch.Tensor, h_hat: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """sum_i a_i ||stopgrad(H_i) - r_i([Z_i; U_i])||^2 / d, averaged over the batch; ``h``, ``h_hat``: (M, B, d),
    ``present``: (B, M)."""
    err = ((h.detach() - h_hat) ** 2).mean(dim=2)  # (M, B), the squared norm over d
    return (err * present.T.to(err.dtype)).sum(dim=0).mean()


def orthogonality_penalty(z: torch.Tensor, u: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """sum_i ||Z_i^T U_i||_F^2 / B_n on L2-normalised rows, the absent rows left out; (M, B, .) inputs."""
    a = present.T.unsqueeze(2).to(z.dtype)
    zn, un = F.normalize(z, dim=2) * a, F.normalize(u, dim=2) * a
    cross = zn.transpose(1, 2) @ un  # (M, p, pu)
    return ((cross**2).sum(dim=(1, 2)) / a.sum(dim=(1, 2)).clamp(min=1.0)).sum()


class BalancedSampler:
    """Class-balanced draws from the labelled pool: each draw cycles through the classes in a random order,
    and within a class takes samples in a random order (without replacement until the class is used up)."""

    def __init__(self, y: torch.Tensor) -> None:
        y = y.cpu()
        self.classes, cls = torch.unique(y, sorted=True, return_inverse=True)
        self.cls = cls.to(torch.float64)
        self.counts = torch.bincount(cls, minlength=len(self.classes))
        self.starts = torch.cumsum(self.counts, 0) - self.counts

    def draw(self, k: int, generator: torch.Generator) -> torch.Tensor:
        """``k`` positions into the pool (CPU, int64)."""
        keys = torch.rand(len(self.cls), generator=generator, dtype=torch.float64)
        order = torch.argsort(self.cls + keys, stable=True)  # grouped by class, shuffled inside each class
        n_classes = len(self.classes)
        slots = torch.arange(k)
        slot_class = torch.randperm(n_classes, generator=generator)[slots % n_classes]
        rank = slots // n_classes
        return order[self.starts[slot_class] + rank % self.counts[slot_class]]


# --------------------------------------------------------------------------------------------------
# The network.
# --------------------------------------------------------------------------------------------------


class RobultNet(nn.Module):
    """f_i (shared encoder blocks), g_0 (shared projector), g_i (unique projectors), r_i (latent decoders,
    training only), f_0 (fusion over the masked H_i and the mask) and the head c."""

    def __init__(self, info: DatasetInfo, width: int, hp: RobultHparams) -> None:
        super().__init__()
        n_mod = len(info.modalities)
        self.names = [m.name for m in info.modalities]
        self.hp = hp
        self.encoders = nn.ModuleList([make_encoder(m, width) for m in info.modalities])
        self.g0 = _mlp(width, width, hp.proj_dim)
        # [INF] g_i and r_i are 2-layer MLPs (hidden width d), one per modality, run as one grouped matmul.
        self.unique = GroupedMLP(n_mod, width, width, hp.unique_dim)
        self.decoders = GroupedMLP(n_mod, hp.proj_dim + hp.unique_dim, width, width)
        fusion_in = n_mod * width + (n_mod if hp.fusion_mask_input else 0)
        # [INF] f_0 is a 2-layer MLP ending in a ReLU, like the encoders whose outputs share g_0 with it.
        self.fusion = nn.Sequential(nn.Linear(fusion_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())
        head_in = hp.proj_dim + n_mod * hp.unique_dim
        if hp.head_hidden > 0:
            self.head = nn.Sequential(nn.Linear(head_in, hp.head_hidden), nn.ReLU(),
                                      nn.Linear(hp.head_hidden, info.n_classes))
        else:
            self.head = nn.Linear(head_in, info.n_classes)

    def encode(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor):
        """H (M, B, d) with absent rows exactly zero, Z = g_0(H) (M, B, p), U = g_i(H_i) (M, B, pu)."""
        hs = []
        for j, (name, enc) in enumerate(zip(self.names, self.encoders, strict=True)):
            h = enc(x[name])
            hs.append(torch.where(mask[:, j : j + 1], h, torch.zeros((), dtype=h.dtype, device=h.device)))
        h = torch.stack(hs)
        z = self.g0(h)
        u = self.unique(h)
        return h, z, u

    def fuse(self, h: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
        """S = g_0(f_0(concat_i(a_i H_i) (+) a))."""
        keep = avail.T.unsqueeze(2)
        hm = torch.where(keep, h, torch.zeros((), dtype=h.dtype, device=h.device))
        parts = list(hm.unbind(0))
        if self.hp.fusion_mask_input:
            parts.append(avail.to(h.dtype))
        return self.g0(self.fusion(torch.cat(parts, dim=1)))

    def head_logits(self, h: torch.Tensor, z: torch.Tensor, u: torch.Tensor, s: torch.Tensor,
                    avail: torch.Tensor) -> torch.Tensor:
        """c([R ; a_1 U_1 ; ... ; a_M U_M]) with R = S where every modality is available, else the mean of the
        available Z_i ("mean_z"), or always S from f_0 fed with ``avail`` ("fusion_masked")."""
        zero = torch.zeros((), dtype=z.dtype, device=z.device)
        if self.hp.missing_redundant == "fusion_masked":
            r = self.fuse(h, avail)
            r = F.normalize(r, dim=1) if self.hp.normalized_redundant else r
        else:
            zr = F.normalize(z, dim=2) if self.hp.normalized_redundant else z
            sr = F.normalize(s, dim=1) if self.hp.normalized_redundant else s
            keep = avail.T.unsqueeze(2)
            mean_z = torch.where(keep, zr, zero).sum(dim=0) / keep.to(z.dtype).sum(dim=0).clamp(min=1.0)
            r = torch.where(avail.all(dim=1, keepdim=True), sr, mean_z)
        us = torch.where(avail.T.unsqueeze(2), u, zero)
        return self.head(torch.cat([r, *us.unbind(0)], dim=1))

    def reconstruct(self, z: torch.Tensor, u: torch.Tensor, detach_z: bool) -> torch.Tensor:
        zin = z.detach() if detach_z else z
        return self.decoders(torch.cat([zin, u], dim=2))

    def forward(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        h, z, u = self.encode(x, mask)
        return self.head_logits(h, z, u, self.fuse(h, mask), mask)


# --------------------------------------------------------------------------------------------------
# The method.
# --------------------------------------------------------------------------------------------------

_LOSS_TERMS = ("loss_sup", "loss_lb", "loss_ulb", "loss_rec", "loss_orth", "rbf_mean_offdiag_w", "rbf_sigma2")


def _round(v: float) -> float | None:
    return float(f"{v:.4g}") if math.isfinite(v) else None


class Robult(TorchMethod):
    """Robult (arXiv 2509.03477), reconstructed from its abstract, a review and a reviewer's note.

    Structure: per-modality encoders f_i (the shared ``make_encoder`` blocks, width d = the budget's width)
    give H_i; a shared projector g_0 gives the redundant features Z_i = g_0(H_i) [SRC]; per-modality
    projectors g_i give the unique features U_i = g_i(H_i) [SRC]; a fusion network f_0 over the masked H_i and
    the mask gives H_0 [SRC fusion branch; INF its input], S = g_0(H_0) [INF]; latent decoders r_i rebuild H_i
    from [Z_i; U_i] (training only) [INF form]; the head is c([R; a_1 U_1; ...; a_M U_M]) with R = S when every
    modality is present and the mean of the available Z_i otherwise, a missing U_i zeroed [INF].

    Loss: L = L_sup + lambda_lb L_lb + lambda_ulb L_ulb + lambda_rec L_rec (+ lambda_orth L_orth), with L_sup the
    cross-entropy on labelled samples [SRC name; INF form], L_lb / L_ulb the soft positive-unlabelled
    contrastive loss between each Z_i (anchor) and S (candidates): labelled pairs are positives by class,
    other pairs are weighted by an RBF kernel on stopgrad(S) with the median-heuristic bandwidth [SRC name and
    RBF; INF form], summed over the available modalities; L_rec the latent reconstruction with a
    stop-gradient target [SRC name; INF form]. With unlabelled training samples (the ``labels[...]`` training
    conditions) each step draws B_l labelled samples with a class-balanced sampler and B_u unlabelled ones
    [INF]; an epoch is one pass over the unlabelled samples. With every label present, steps are the shared
    trainer's ordinary shuffled batches.

    Hyperparameters: see the ``RobultHparams`` fields (doc, all [INF], defaults from the spec). [SRC] parts
    with no setting: one latent width d for every modality, one g_0 shared by all modalities, one g_i and r_i
    per modality, the two objectives, the semi-supervised setting.

    Shared, not per-method: d, epochs, patience, batch size, learning rate and weight decay come from the
    training budget, and the optimiser is the shared trainer's Adam without a schedule (the spec's [INF]
    AdamW, cosine schedule, 100 epochs and d = 128 are not used, so that methods differ in objective only).
    Early stopping keeps the weights with the best mean log-likelihood of the labelled validation samples
    (the benchmark's shared criterion, ``TorchMethod.val_score``) [INF: the spec names no criterion].

    ``extras()``: per epoch, the loss terms, the mean off-diagonal RBF weight and sigma^2 (averaged over the
    epoch's steps), per modality the mean per-dimension std of U_i, the share of U dimensions below 1e-3
    (collapse), cos(S, Z_i), cos(S, mean Z) and the rise of L_rec when U is zeroed; at the end (the kept
    weights) the per-dimension std of every U_i. Note: with the median heuristic the median pair weight is
    exp(-1/2) ~ 0.61 by construction, so the mean off-diagonal weight sits near 0.5, the top of the spec's
    healthy range (0.05-0.5); ``bandwidth_scale`` < 1 lowers it. Search spaces (``hparam``) serve the tuned suite.
    """

    name = "robult"
    Hparams = RobultHparams

    def __init__(self, info: DatasetInfo, hparams: RobultHparams | None = None) -> None:
        super().__init__(info, hparams)
        self._history: dict[str, list] = {}
        self._final: dict[str, object] = {}
        self._setup: dict[str, object] = {}

    # ---- pieces of TorchMethod --------------------------------------------------------------------
    def build(self, width: int) -> nn.Module:
        return RobultNet(self.info, width, self.hparams)

    def logits(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        return self.net(x, mask)

    def _dropout_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """Modality dropout on the head input: drop each available modality with probability p, keep at least
        one (the available one with the largest uniform)."""
        u = torch.rand(mask.shape, generator=self.ctx.generator).to(mask.device)
        u = torch.where(mask, u, torch.full_like(u, -1.0))
        keep = (u >= self.hparams.modality_dropout_p) & mask
        best = (u == u.max(dim=1, keepdim=True).values) & mask  # no one_hot/scatter: deterministic on CUDA
        return torch.where(keep.any(dim=1, keepdim=True), keep, best)

    def terms(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Every loss term of a batch (and the RBF diagnostics), before weighting."""
        hp, net = self.hparams, self.net
        h, z, u = net.encode(batch.x, batch.mask)
        s = net.fuse(h, batch.mask)
        avail = self._dropout_mask(batch.mask) if hp.modality_dropout and net.training else batch.mask
        out = {"loss_sup": cross_entropy(net.head_logits(h, z, u, s, avail), batch.y)}
        sn, zn = F.normalize(s, dim=1), F.normalize(z, dim=2)
        w, sigma2 = rbf_weights(sn, scale=hp.bandwidth_scale)
        out["loss_lb"], out["loss_ulb"] = soft_pu_contrastive(zn, sn, batch.y, batch.labeled, batch.mask, w, hp.tau)
        out["loss_rec"] = reconstruction_loss(h, net.reconstruct(z, u, hp.detach_z_in_rec), batch.mask)
        out["loss_orth"] = (orthogonality_penalty(z, u, batch.mask) if hp.lambda_orth > 0
                            else torch.zeros((), dtype=s.dtype, device=s.device))
        n = w.shape[0]
        out["rbf_mean_offdiag_w"] = ((w.sum() - n) / max(n * (n - 1), 1)).detach()
        out["rbf_sigma2"] = sigma2.detach()
        return out

    def loss(self, batch: Batch) -> torch.Tensor:
        hp = self.hparams
        t = self.terms(batch)
        total = (t["loss_sup"] + hp.lambda_lb * t["loss_lb"] + hp.lambda_ulb * t["loss_ulb"]
                 + hp.lambda_rec * t["loss_rec"] + hp.lambda_orth * t["loss_orth"])
        if self.net.training and hasattr(self, "_acc"):
            self._acc = self._acc + torch.stack([t[k].detach() for k in _LOSS_TERMS])
            self._steps += 1
        return total

    # ---- training ---------------------------------------------------------------------------------
    def fit(self, train: Split, val: Split, ctx: TrainContext) -> None:
        hp = self.hparams
        self.device, self.ctx = ctx.device, ctx
        self.train_split, self.val_split = train, val
        self.net = self.build(ctx.budget.width).to(ctx.device)
        self._history = {}
        n_diag = min(len(train), DIAGNOSTIC_SAMPLES)
        self._diag = train.subset(torch.arange(n_diag, device=train.mask.device))
        labelled = train.labeled
        n_lab, n_unl = int(labelled.sum()), int((~labelled).sum())
        self._setup = {"n_labelled": n_lab, "n_unlabelled": n_unl, "semi_supervised": n_lab > 0 and n_unl > 0}
        if n_lab > 0 and n_unl > 0:
            b_l = max(1, round(hp.labelled_share * ctx.budget.batch_size))
            b_u = max(1, ctx.budget.batch_size - b_l)
            self._labelled = train.subset(torch.nonzero(labelled).flatten())
            unlabelled = train.subset(torch.nonzero(~labelled).flatten())
            self._sampler = BalancedSampler(self._labelled.y) if hp.class_balanced else None
            self._b_l = b_l
            self._setup.update(batch_labelled=b_l, batch_unlabelled=b_u)
            # the same context (generator, clock, logs), with B_u unlabelled samples per step
            inner = dataclasses.replace(ctx, budget=dataclasses.replace(ctx.budget, batch_size=b_u))
            fit_network(self.net, lambda batch: self.loss(self._with_labelled(batch)), unlabelled, inner,
                        self.val_score, on_epoch_start=self.on_epoch_start, on_epoch_end=self.on_epoch_end,
                        criterion=self.stopping_criterion)
        else:
            fit_network(self.net, self.loss, train, ctx, self.val_score,
                        on_epoch_start=self.on_epoch_start, on_epoch_end=self.on_epoch_end,
                        criterion=self.stopping_criterion)
        self._final = self._final_diagnostics()
        del self._acc

    def _with_labelled(self, batch: Batch) -> Batch:
        """The unlabelled batch joined by B_l labelled samples (class-balanced, or uniform without it)."""
        g = self.ctx.generator
        if self._sampler is not None:
            pos = self._sampler.draw(self._b_l, g)
        else:
            pos = torch.randint(len(self._labelled), (self._b_l,), generator=g)
        lab = self._labelled
        pos = pos.to(lab.mask.device)
        return Batch(
            x={k: torch.cat([lab.x[k][pos], v]) for k, v in batch.x.items()},
            mask=torch.cat([lab.mask[pos], batch.mask]),
            y=torch.cat([lab.y[pos], batch.y]),
            labeled=torch.cat([lab.labeled[pos], batch.labeled]),
        )

    def on_epoch_start(self, epoch: int) -> None:
        self._acc = torch.zeros(len(_LOSS_TERMS), device=self.device)
        self._steps = 0

    def on_epoch_end(self, epoch: int) -> None:
        means = (self._acc / max(self._steps, 1)).tolist()
        row = dict(zip(_LOSS_TERMS, means, strict=True))
        row.update(self._diagnose())
        for k, v in row.items():
            self._history.setdefault(k, []).append(v)

    # ---- diagnostics ------------------------------------------------------------------------------
    @torch.no_grad()
    def _diagnose(self, per_dim: bool = False) -> dict[str, object]:
        net, d = self.net, self._diag
        was_training = net.training
        net.eval()
        h, z, u = net.encode(d.x, d.mask)
        s = F.normalize(net.fuse(h, d.mask), dim=1)
        zn = F.normalize(z, dim=2)
        out: dict[str, object] = {"u_std_mean": [], "u_collapsed_frac": [], "cos_s_z": []}
        per_dim_std: dict[str, list] = {}
        for j, name in enumerate(net.names):
            rows = d.mask[:, j]
            if int(rows.sum()) < 2:
                out["u_std_mean"].append(None)
                out["u_collapsed_frac"].append(None)
                out["cos_s_z"].append(None)
                continue
            std = u[j][rows].std(dim=0, unbiased=False)
            out["u_std_mean"].append(float(std.mean()))
            out["u_collapsed_frac"].append(float((std < COLLAPSE_STD).float().mean()))
            out["cos_s_z"].append(float((zn[j][rows] * s[rows]).sum(dim=1).mean()))
            per_dim_std[name] = [_round(v) for v in std.tolist()]
        keep = d.mask.T.unsqueeze(2).to(z.dtype)
        any_rows = d.mask.any(dim=1)
        mean_z = F.normalize((zn * keep).sum(dim=0), dim=1)
        out["cos_s_meanz"] = float((mean_z[any_rows] * s[any_rows]).sum(dim=1).mean()) if bool(any_rows.any()) else None
        rec = reconstruction_loss(h, net.reconstruct(z, u, False), d.mask)
        rec_no_u = reconstruction_loss(h, net.reconstruct(z, torch.zeros_like(u), False), d.mask)
        out["rec_gain_from_u"] = float(rec_no_u - rec)
        if per_dim:
            out["u_std_per_dim"] = per_dim_std
        net.train(was_training)
        return out

    def _final_diagnostics(self) -> dict[str, object]:
        """Diagnostics of the kept (best-validation) weights, with the per-dimension spread of U."""
        final = self._diagnose(per_dim=True)
        collapsed = [f for f in final["u_collapsed_frac"] if f is not None]
        final["u_collapse_detected"] = bool(collapsed and max(collapsed) > 0.5)
        return final

    def extras(self) -> dict[str, object]:
        """Small, JSON-serialisable diagnostics (see the class docstring); kept under ~19 KB of JSON."""

        def clean(v):
            if isinstance(v, float):
                return _round(v)
            if isinstance(v, list):
                return [clean(x) for x in v]
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            return v

        out = {"modalities": [m.name for m in self.info.modalities], **self._setup,
               "per_epoch": clean(self._history), "final": clean(self._final)}
        if len(json.dumps(out)) > EXTRAS_MAX_CHARS and isinstance(out["final"], dict):
            out["final"] = {k: v for k, v in out["final"].items() if k != "u_std_per_dim"}
        while len(json.dumps(out)) > EXTRAS_MAX_CHARS and out["per_epoch"]:
            # thin the per-epoch lists (every second epoch), keeping the last one; record the stride
            out["per_epoch"] = {k: v[::-1][::2][::-1] for k, v in out["per_epoch"].items()}
            out["per_epoch_stride"] = 2 * out.get("per_epoch_stride", 1)
            if all(len(v) <= 1 for v in out["per_epoch"].values()):
                break
        return out
