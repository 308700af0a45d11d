"""Robult: redundant (shared) plus modality-specific (unique) features, a soft positive-unlabelled
contrastive loss, a latent reconstruction loss, semi-supervised training and missing modalities at test time.

Implements /work/shared/specs/robult.md. The paper's full text, code and numbers were not reachable, so
most of the form is reconstructed ([INF]); every [INF] choice is a field of ``RobultHparams``. The losses are
pure functions in ``_robult_losses``.
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
from ._robult_losses import (  # noqa: F401 - re-exported: the losses are part of this method's surface
    BANDWIDTH_RULES,
    median_offdiagonal,
    offdiagonal_stats,
    orthogonality_penalty,
    pu_targets,
    rbf_weights,
    reconstruction_loss,
    soft_pu_contrastive,
    squared_distances,
    supervised_contrastive,
)

#: How many training samples (the first ones of the split, no randomness) the per-epoch diagnostics use.
DIAGNOSTIC_SAMPLES = 256
#: A U dimension whose standard deviation falls below this counts as collapsed (spec 1.8).
COLLAPSE_STD = 1e-3
#: The diagnostics are kept below this many characters of JSON (the record's budget is 20 KB).
EXTRAS_MAX_CHARS = 19_000


POSITIVE = Range(0, None, low_open=True)
NON_NEGATIVE = Range(0, None)
HEADS = ("per_modality", "fused")
HEAD_SHARING = ("adapter", "separate")
CONTRASTIVE = ("soft_pu", "supervised")
#: The default bandwidth rule, chosen on synthetic_pid (see ``RobultHparams.bandwidth_rule``).
BANDWIDTH_DEFAULT = "quantile"
QUANTILE_DEFAULT = 0.1


@dataclass(frozen=True)
class RobultHparams:
    """Every field is [INF] or partly so (spec shared/specs/robult.md; the paper's full text was not reachable)."""

    head: str = hparam("per_modality", source="SRC/INF", allowed=HEADS,
                       doc='the task head c. "per_modality" (default; the paper text: c takes [Z_i ; U_i]): one '
                           "shared c reads [Z_i ; U_i] of each available modality and the logits are the mean "
                           "over the available modalities [INF: the pooling], so training and test see the same "
                           'kind of input when a modality is missing. "fused" (the earlier reconstruction [INF]): '
                           "c([R ; a_1 U_1 ; ... ; a_M U_M]), R = S when every modality is present, else "
                           "missing_redundant")
    head_sharing: str = hparam("adapter", source="INF", allowed=HEAD_SHARING,
                               doc='per_modality head only. "adapter" (default): one c shared by every modality, '
                                   "each U_i first through its own small adapter A_i (a per-dimension gain and "
                                   "offset, started at the identity), because U_i's coordinates are "
                                   "modality-specific while Z_i's are shared; \"separate\": one c_i per modality")
    contrastive: str = hparam("soft_pu", source="SRC/INF", allowed=CONTRASTIVE,
                              doc='the contrastive term between Z_i and S. "soft_pu" (default, the paper\'s): '
                                  'L_lb + L_ulb, the soft positive-unlabelled InfoNCE; "supervised" (the paper\'s '
                                  "ablation): supervised contrastive on the labelled samples only, weighted by "
                                  "lambda_lb, the unlabelled samples left out (L_ulb = 0)")
    proj_dim: int = hparam(64, Choice((32, 64, 128)), source="INF", allowed=Range(1, None),
                           doc="p, the width of the redundant features Z_i and of S = g_0(H_0) (spec: 64)")
    unique_dim: int = hparam(64, Choice((32, 64, 128)), source="INF", allowed=Range(1, None),
                             doc="the width of the unique features U_i (spec: the same p = 64; a larger one is a "
                                 "listed remedy)")
    tau: float = hparam(0.1, LogUniform(0.05, 0.5), source="INF", allowed=POSITIVE,
                        doc="the temperature of the soft PU contrastive loss (spec: 0.1)")
    bandwidth_rule: str = hparam(BANDWIDTH_DEFAULT, source="INF", allowed=BANDWIDTH_RULES,
                                 doc="the RBF bandwidth, recomputed every batch from the off-diagonal squared "
                                     "distances of stopgrad(S): sigma^2 = bandwidth_scale * their "
                                     'bandwidth_quantile quantile ("quantile", default: it keeps the mean '
                                     "off-diagonal weight in the spec's healthy range 0.05-0.5 on synthetic_pid) or "
                                     '* their median ("median", the median heuristic, the earlier default: mean '
                                     "weight 0.51-0.55 on synthetic_pid at labels[0.05], 0.62-0.65 in the "
                                     "committed full suite: saturated)")
    bandwidth_quantile: float = hparam(QUANTILE_DEFAULT, source="INF", allowed=Range(0, 1, low_open=True),
                                       doc='the quantile of the "quantile" bandwidth rule')
    bandwidth_scale: float = hparam(1.0, LogUniform(0.1, 2.0), source="INF", allowed=POSITIVE,
                                    doc="sigma^2 = bandwidth_scale * the bandwidth rule's statistic (1)")
    lambda_lb: float = hparam(1.0, LogUniform(0.1, 3.0), source="INF", allowed=NON_NEGATIVE,
                              doc="weight of the labelled part of the soft PU loss, or of the supervised "
                                  "contrastive loss (spec: 1)")
    lambda_ulb: float = hparam(1.0, LogUniform(0.1, 3.0), source="INF", allowed=NON_NEGATIVE,
                               doc="weight of the unlabelled part of the soft PU loss (spec: 1)")
    lambda_rec: float = hparam(1.0, LogUniform(0.1, 3.0), source="INF", allowed=NON_NEGATIVE,
                               doc="weight of the latent reconstruction loss (spec: 1; 0 is the paper's ablation "
                                   "without L_rec)")
    lambda_orth: float = hparam(0.0, Choice((0.0, 0.1, 1.0)), source="INF", allowed=NON_NEGATIVE,
                                doc="weight of the optional orthogonality penalty ||Z_i^T U_i||_F^2 / B_n (spec: "
                                    "off, 0)")
    detach_z_in_rec: bool = hparam(True, source="SRC/INF",
                                   doc="r_i reads stopgrad(Z_i), so L_rec never reaches g_0 (the paper text: the "
                                       "reconstruction is backpropagated only to the modality-specific branches); "
                                       "False = the earlier reconstruction, where it also trains g_0")
    rec_through_encoder: bool = hparam(True, source="INF",
                                       doc="L_rec reaches the encoder f_i through U_i (on); off: U_i for L_rec is "
                                           "g_i(stopgrad(H_i)), so L_rec trains only g_i and r_i")
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
                                    doc='fused head only: R when a modality is missing: "mean_z" (the mean of the '
                                        'available Z_i; spec) or "fusion_masked" (the ablation: S from f_0 fed with '
                                        "the mask)")
    fusion_mask_input: bool = hparam(True, source="INF",
                                     doc="feed the mask a to the fusion network f_0 besides the masked H_i (spec: on)")
    normalized_redundant: bool = hparam(True, Choice((True, False)), source="INF",
                                        doc="the head reads the L2-normalised Z_i (and S) (the space the "
                                            "contrastive loss aligns them in), so Z_i and S are interchangeable "
                                            "(not in the spec; off = raw g_0 outputs)")
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
# Sampling.
# --------------------------------------------------------------------------------------------------


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


class GroupedLinear(nn.Module):
    """M independent linear maps on (M, B, d_in) input (the per-modality heads c_i), initialised like
    ``nn.Linear``."""

    def __init__(self, n_groups: int, d_in: int, d_out: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(d_in)
        self.w = nn.Parameter(torch.empty(n_groups, d_in, d_out).uniform_(-bound, bound))
        self.b = nn.Parameter(torch.empty(n_groups, 1, d_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.b, x, self.w)


class DiagonalAdapters(nn.Module):
    """A_i(u) = gamma_i * u + beta_i per modality on (M, B, d) input, started at the identity: a small
    per-modality input adapter (2 d parameters each) that lets the shared head c weigh and shift each
    modality's unique slots, whose coordinates g_i and r_i set."""

    def __init__(self, n_groups: int, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(n_groups, 1, dim))
        self.beta = nn.Parameter(torch.zeros(n_groups, 1, dim))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.beta, self.gamma, u)


def _classifier(n_groups: int, d_in: int, hidden: int, n_classes: int) -> nn.Module:
    """The task head c (``n_groups`` = 0: one shared head; else one per modality), linear or one hidden layer."""
    if n_groups == 0:
        if hidden > 0:
            return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))
        return nn.Linear(d_in, n_classes)
    return GroupedMLP(n_groups, d_in, hidden, n_classes) if hidden > 0 else GroupedLinear(n_groups, d_in, n_classes)


class RobultNet(nn.Module):
    """f_i (shared encoder blocks), g_0 (shared projector), g_i (unique projectors), r_i (latent decoders,
    training only), f_0 (fusion over the masked H_i and the mask) and the head c (``hp.head``)."""

    def __init__(self, info: DatasetInfo, width: int, hp: RobultHparams) -> None:
        super().__init__()
        n_mod, n_classes = len(info.modalities), info.n_classes
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
        if hp.head == "fused":
            self.head = _classifier(0, hp.proj_dim + n_mod * hp.unique_dim, hp.head_hidden, n_classes)
        elif hp.head_sharing == "adapter":
            self.adapters = DiagonalAdapters(n_mod, hp.unique_dim)
            self.head = _classifier(0, hp.proj_dim + hp.unique_dim, hp.head_hidden, n_classes)
        else:
            self.head = _classifier(n_mod, hp.proj_dim + hp.unique_dim, hp.head_hidden, n_classes)

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

    def modality_logits(self, z: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The per_modality head's logits of each modality, c([Z_i ; A_i U_i]) or c_i([Z_i ; U_i]): (M, B, K)."""
        zr = F.normalize(z, dim=2) if self.hp.normalized_redundant else z
        if self.hp.head_sharing == "adapter":
            return self.head(torch.cat([zr, self.adapters(u)], dim=2))
        return self.head(torch.cat([zr, u], dim=2))

    def head_logits(self, h: torch.Tensor, z: torch.Tensor, u: torch.Tensor, s: torch.Tensor | None,
                    avail: torch.Tensor) -> torch.Tensor:
        """The logits of the head on the modalities ``avail`` (B, M) marks available.

        per_modality: the mean over the available modalities of c([Z_i ; U_i]) (0, uniform, when none is).
        fused: c([R ; a_1 U_1 ; ... ; a_M U_M]) with R = S where every modality is available, else the mean of
        the available Z_i ("mean_z"), or always S from f_0 fed with ``avail`` ("fusion_masked"); ``s`` is S of
        the full input (computed here when None)."""
        zero = torch.zeros((), dtype=z.dtype, device=z.device)
        keep = avail.T.unsqueeze(2)
        if self.hp.head == "per_modality":
            per = self.modality_logits(z, u)
            return torch.where(keep, per, zero).sum(dim=0) / keep.to(per.dtype).sum(dim=0).clamp(min=1.0)
        if self.hp.missing_redundant == "fusion_masked":
            r = self.fuse(h, avail)
            r = F.normalize(r, dim=1) if self.hp.normalized_redundant else r
        else:
            s = self.fuse(h, avail) if s is None else s
            zr = F.normalize(z, dim=2) if self.hp.normalized_redundant else z
            sr = F.normalize(s, dim=1) if self.hp.normalized_redundant else s
            mean_z = torch.where(keep, zr, zero).sum(dim=0) / keep.to(z.dtype).sum(dim=0).clamp(min=1.0)
            r = torch.where(avail.all(dim=1, keepdim=True), sr, mean_z)
        us = torch.where(keep, u, zero)
        return self.head(torch.cat([r, *us.unbind(0)], dim=1))

    def reconstruct(self, h: torch.Tensor, z: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """r_i([stopgrad(Z_i) ; U_i]): L_rec reaches r_i, g_i and (``rec_through_encoder``) f_i, never g_0
        (``detach_z_in_rec``)."""
        zin = z.detach() if self.hp.detach_z_in_rec else z
        uin = u if self.hp.rec_through_encoder else self.unique(h.detach())
        return self.decoders(torch.cat([zin, uin], dim=2))

    def forward(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        h, z, u = self.encode(x, mask)
        return self.head_logits(h, z, u, None, mask)


# --------------------------------------------------------------------------------------------------
# The method.
# --------------------------------------------------------------------------------------------------

_LOSS_TERMS = ("loss_sup", "loss_lb", "loss_ulb", "loss_rec", "loss_orth", "rbf_mean_offdiag_w", "rbf_std_offdiag_w",
               "rbf_sigma2")
#: The RBF weight statistics averaged over every training step (besides their per-epoch means).
_OVERALL = ("rbf_mean_offdiag_w", "rbf_std_offdiag_w")


def _round(v: float) -> float | None:
    return float(f"{v:.4g}") if math.isfinite(v) else None


class Robult(TorchMethod):
    """Robult (arXiv 2509.03477), reconstructed from its abstract, a review, a reviewer's note and a summary of
    the paper text (shared/papers/robult.md).

    Structure: per-modality encoders f_i (the shared ``make_encoder`` blocks, width d = the budget's width)
    give H_i; a shared projector g_0 gives the redundant features Z_i = g_0(H_i) [SRC]; per-modality
    projectors g_i give the unique features U_i = g_i(H_i) [SRC]; a fusion network f_0 over the masked H_i and
    the mask gives H_0 [SRC fusion branch; INF its input], S = g_0(H_0) [INF]; latent decoders r_i rebuild H_i
    from [stopgrad(Z_i); U_i] (training only) [INF form].

    Head (``head``): the paper text has the classifier read [Z_i ; U_i]. Default "per_modality": one shared c
    reads [Z_i ; A_i U_i] of each available modality and the logits are their mean [INF: the pooling, the
    adapters]. U_i's coordinates are modality-specific (each g_i is its own network) while Z_i's are shared
    (one g_0), so each U_i passes a small adapter A_i (a per-dimension gain and offset, started at the
    identity; g_i itself can rotate U_i into the coordinates c reads) before the shared c; the alternative,
    one c_i per modality (``head_sharing = "separate"``), would not share the Z readout. A full linear adapter
    per modality would cost M p^2 parameters whatever the width (25k on mfeat), more than small budgets hold. A missing
    modality drops out of the mean, so the head needs neither f_0 nor a stand-in for S at test time. Variant
    "fused" [INF, the earlier reconstruction]: c([R ; a_1 U_1 ; ... ; a_M U_M]), R = S when every modality is
    present, else the mean of the available Z_i, a missing U_i zeroed.

    Loss: L = L_sup + lambda_lb L_lb + lambda_ulb L_ulb + lambda_rec L_rec (+ lambda_orth L_orth), with L_sup the
    cross-entropy on labelled samples [SRC name; INF form], L_lb / L_ulb the soft positive-unlabelled
    contrastive loss between each Z_i (anchor) and S (candidates): labelled pairs are positives by class,
    other pairs are weighted by an RBF kernel on stopgrad(S) [SRC name and RBF; INF form], summed over the
    available modalities. Bandwidth [INF]: sigma^2 = the 0.1 quantile of the batch's off-diagonal squared
    distances; on synthetic_pid (labels[0.05], 2 seeds) it keeps the mean off-diagonal weight at 0.15-0.18
    (per epoch 0.12-0.27), inside the spec's healthy 0.05-0.5, where the median heuristic
    (``bandwidth_rule = "median"``, kept as a variant) gave 0.51-0.55. L_rec = sum_i a_i ||stopgrad(H_i) -
    r_i([stopgrad(Z_i) ; U_i])||^2 / d [SRC name and path; INF form]: its gradient reaches r_i, g_i and,
    through U_i, f_i [INF, ``rec_through_encoder``], never g_0 (the paper text: "backpropagated only to
    modality-specific branches"). Ablations [SRC: the paper runs them]: ``lambda_rec = 0`` (no L_rec) and
    ``contrastive = "supervised"`` (supervised contrastive between Z_i and S on the labelled samples only).

    With unlabelled training samples (the ``labels[...]`` training conditions) each step draws B_l labelled
    samples with a class-balanced sampler and B_u unlabelled ones [INF]; an epoch is one pass over the
    unlabelled samples. With every label present, steps are the shared trainer's ordinary shuffled batches.
    Modality dropout (``modality_dropout``, off; p = 0.3 when on) [INF] drops modalities from the head's input
    only.

    [INF] choices as they now stand (each a ``RobultHparams`` field; defaults from the spec): head pooling and
    adapters, bandwidth rule and quantile, tau, p and the width of U, the lambdas, the orthogonality penalty
    (off), the stop-gradient on Z_i in r_i and L_rec's path into f_i, the labelled share of a batch and its
    class-balanced sampler, modality dropout, R of the fused head, the mask as f_0's input, normalised Z_i as
    the head's input, the head's hidden width. [SRC] parts with no setting: one latent width d for every
    modality, one g_0 shared by all modalities, one g_i and r_i per modality, the two objectives, the
    semi-supervised setting.

    Shared, not per-method: d, epochs, patience, batch size, learning rate and weight decay come from the
    training budget, and the optimiser is the shared trainer's Adam without a schedule (the spec's [INF]
    AdamW, cosine schedule, 100 epochs and d = 128 are not used, so that methods differ in objective only).
    Early stopping keeps the weights with the best mean log-likelihood of the labelled validation samples
    (the benchmark's shared criterion, ``TorchMethod.val_score``) [INF: the spec names no criterion].

    ``extras()``: ``variant`` (the head, contrastive term, bandwidth rule, lambda_rec, dropout that ran); the
    RBF weights' off-diagonal mean and standard deviation over all training steps
    (``rbf_mean_offdiag_w_overall``, ``rbf_std_offdiag_w_overall``); per epoch, the loss terms, the weights'
    mean and spread and sigma^2 (averaged over the epoch's steps), per modality the mean per-dimension std of
    U_i, the share of U dimensions below 1e-3 (collapse), cos(S, Z_i), cos(S, mean Z) and the rise of L_rec
    when U is zeroed; at the end (the kept weights) the per-dimension std of every U_i. With the supervised
    ablation the RBF weights are computed for the record only. Search spaces (``hparam``) serve the tuned
    suite.
    """

    name = "robult"
    Hparams = RobultHparams

    def __init__(self, info: DatasetInfo, hparams: RobultHparams | None = None) -> None:
        super().__init__(info, hparams)
        self._history: dict[str, list] = {}
        self._final: dict[str, object] = {}
        self._setup: dict[str, object] = {}
        self._overall: dict[str, float] = {}

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
        w, sigma2 = rbf_weights(sn, scale=hp.bandwidth_scale, rule=hp.bandwidth_rule, quantile=hp.bandwidth_quantile)
        if hp.contrastive == "soft_pu":
            out["loss_lb"], out["loss_ulb"] = soft_pu_contrastive(zn, sn, batch.y, batch.labeled, batch.mask, w,
                                                                  hp.tau)
        else:  # the ablation: the weights w are computed for the record only
            out["loss_lb"] = supervised_contrastive(zn, sn, batch.y, batch.labeled, batch.mask, hp.tau)
            out["loss_ulb"] = torch.zeros((), dtype=s.dtype, device=s.device)
        out["loss_rec"] = reconstruction_loss(h, net.reconstruct(h, z, u), batch.mask)
        out["loss_orth"] = (orthogonality_penalty(z, u, batch.mask) if hp.lambda_orth > 0
                            else torch.zeros((), dtype=s.dtype, device=s.device))
        mean_w, std_w = offdiagonal_stats(w)
        out["rbf_mean_offdiag_w"], out["rbf_std_offdiag_w"] = mean_w.detach(), std_w.detach()
        out["rbf_sigma2"] = sigma2.detach()
        return out

    def loss(self, batch: Batch) -> torch.Tensor:
        hp = self.hparams
        t = self.terms(batch)
        total = t["loss_sup"] + hp.lambda_lb * t["loss_lb"] + hp.lambda_ulb * t["loss_ulb"]
        # a zero weight leaves the term out of the graph (not times 0), so e.g. without L_rec the decoders r_i get
        # no gradient at all and weight decay does not move them
        if hp.lambda_rec > 0:
            total = total + hp.lambda_rec * t["loss_rec"]
        if hp.lambda_orth > 0:
            total = total + hp.lambda_orth * t["loss_orth"]
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
        self._history, self._overall = {}, {}
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
        sums = dict(zip(_LOSS_TERMS, self._acc.tolist(), strict=True))
        for key in _OVERALL:
            self._overall[key] = self._overall.get(key, 0.0) + sums[key]
        self._overall["steps"] = self._overall.get("steps", 0) + self._steps
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
        rec = reconstruction_loss(h, net.decoders(torch.cat([z, u], dim=2)), d.mask)
        rec_no_u = reconstruction_loss(h, net.decoders(torch.cat([z, torch.zeros_like(u)], dim=2)), d.mask)
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

    def variant(self) -> dict[str, object]:
        """Which variant ran: the hyperparameters that switch a part of the method (the record's spec holds all)."""
        hp = self.hparams
        out: dict[str, object] = {"head": hp.head, "contrastive": hp.contrastive, "bandwidth_rule": hp.bandwidth_rule,
                                  "bandwidth_scale": hp.bandwidth_scale, "lambda_rec": hp.lambda_rec,
                                  "detach_z_in_rec": hp.detach_z_in_rec, "modality_dropout": hp.modality_dropout}
        if hp.head == "per_modality":
            out["head_sharing"] = hp.head_sharing
        else:
            out["missing_redundant"] = hp.missing_redundant
        if hp.bandwidth_rule == "quantile":
            out["bandwidth_quantile"] = hp.bandwidth_quantile
        if hp.modality_dropout:
            out["modality_dropout_p"] = hp.modality_dropout_p
        return out

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

        steps = self._overall.get("steps", 0)
        overall = {f"{k}_overall": (self._overall[k] / steps if steps else None) for k in _OVERALL}
        out = {"modalities": [m.name for m in self.info.modalities], "variant": self.variant(), **self._setup,
               **clean(overall), "per_epoch": clean(self._history), "final": clean(self._final)}
        if len(json.dumps(out)) > EXTRAS_MAX_CHARS and isinstance(out["final"], dict):
            out["final"] = {k: v for k, v in out["final"].items() if k != "u_std_per_dim"}
        while len(json.dumps(out)) > EXTRAS_MAX_CHARS and out["per_epoch"]:
            # thin the per-epoch lists (every second epoch), keeping the last one; record the stride
            out["per_epoch"] = {k: v[::-1][::2][::-1] for k, v in out["per_epoch"].items()}
            out["per_epoch_stride"] = 2 * out.get("per_epoch_stride", 1)
            if all(len(v) <= 1 for v in out["per_epoch"].values()):
                break
        return out
