"""Early-fusion DRO baseline (spec shared/specs/dro_multimodal.md, 2.2 and 2.3(f)): the early-fusion network
(raw features of every modality concatenated, with the mask) trained on a robust risk with one chi-square
ball around the joint distribution."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from benchmark.contracts import Split, TrainContext
from benchmark.hparams import Choice, hparam

from ._blocks import Batch, TabularEncoder, concat_with_mask
from ._dro import (
    NON_NEGATIVE,
    RHO_GRID,
    DependenceEstimator,
    DROHparams,
    DROMethod,
    MMDROHparams,
    ModalityAwareDRO,
    _round,
    chunks,
    per_modality_logits,
    per_modality_network,
    per_sample_ce,
)

#: The matching rule of ``radius="matched"``, recorded with the value it gave.
MATCHED_RULE = ("rho_EF = the mean over mm_dro's training epochs (every epoch run) of its budget B = sum_k rho_k + "
                "2 sum_{i<j} |gamma_ij| sqrt(rho_i rho_j), from mm_dro fitted inside this run on the same splits, "
                "seed, budget and shared DRO hyperparameters (mm_dro's own at their defaults)")


@dataclass(frozen=True)
class EFDROHparams(DROHparams):
    rho_ef: float = hparam(0.1, Choice(RHO_GRID), source="SRC/INF", allowed=NON_NEGATIVE,
                           doc="the single radius rho_EF of the joint chi-square ball [SRC: one ball around the joint "
                               "distribution; INF: its value] (spec 2.3(f): tuned on the grid of rho_k, which is its "
                               "search space); read only with radius=\"own\"")
    radius: str = hparam("own", source="INF", allowed=("own", "matched", "probe_budget"),
                         doc='"own": B = rho_ef; "matched": B = mm_dro\'s mean budget on the same data and seed '
                             '(spec 2.3(f) and "Controls the suite must run": rho_EF is the mean B over mm_dro\'s '
                             'training epochs, mm_dro fitted inside this run with the same seed and the shared DRO '
                             'hyperparameters rho / rho_by_modality / dependence* / objective / modality_dropout / '
                             'early_stopping; the run takes twice as long); "probe_budget": B is rebuilt every '
                             'epoch from mm_dro\'s formula with gamma from linear probes on the raw features')
    network: str = hparam("flat", source="INF", allowed=("flat", "per_modality"),
                          doc='"flat": one MLP on the concatenated raw features and the mask (early fusion\'s '
                              'network, spec 2.2); "per_modality": mm_dro\'s network (an encoder per modality, an '
                              'MLP on concat(encodings, mask)), so that ef_dro and mm_dro differ in the budget only '
                              '(spec 2.8: keep the encoders matched)')
    mask_as_input: bool = hparam(True, source="INF",
                                 doc='feed the mask as extra inputs (as early_fusion); network="per_modality" always '
                                     'does, as mm_dro')


class EFDRO(DROMethod):
    """Early-fusion DRO: one chi-square ball of radius rho_EF around the joint distribution, on the same robust
    objectives as mm_dro. Missing modalities are zero-filled and flagged by the mask; unlabelled rows (y = -1)
    do not enter the loss.

    Network (``network``): "flat" (default) is early_fusion's MLP on the concatenated raw features and the
    mask; "per_modality" is mm_dro's network, built in the same order, so with the same seed both start from
    the same weights and differ only in the budget.

    Radius (``radius``): "own" (default), B = ``rho_ef`` (tuned on the spec's grid). "matched", the spec's
    matched budget: first fit mm_dro inside this run, on the same training and validation splits, with a
    TrainContext from the same seed and budget and the global RNG state this fit started with (that of an
    mm_dro run of the same spec, so the fit is the one the mm_dro run makes), then train at rho_EF = the mean
    of mm_dro's B over every epoch it ran (mm_dro's ``extras()["budget_B_mean"]``); the shared DRO fields
    (rho, rho_by_modality, dependence*, objective, std_eps, surrogate_clip, modality_dropout,
    early_stopping) go to that mm_dro fit, mm_dro's own fields stay at their defaults. The rule and the value
    are recorded in ``extras()["matched_budget"]``. "probe_budget": B is mm_dro's formula, rebuilt every
    epoch with gamma from linear probes on each modality's raw features (trained on the side, never feeding
    the prediction) through the same Spearman -> Gaussian-copula -> EMA estimator.

    [INF] as they now stand: the value of rho_EF (0.1), the matching rule, the per-modality network option,
    the probe-based budget, and the DRO choices shared with mm_dro (objective alternatives, cap, modality
    dropout, early stopping on the robust validation risk). Hyperparameters: see ``EFDROHparams``.

    The shared budget (epochs, patience, batch size, learning rate, weight decay, width) is the runner's.
    Early stopping: ``early_stopping`` (default "robust", minus the robust validation risk, spec 2.4 [INF];
    recorded as ``fit_summary["stopping_criterion"]``).
    """

    name = "ef_dro"
    Hparams = EFDROHparams

    @classmethod
    def n_parameters_at(cls, info, hparams, width: int) -> int:
        """The parameter count a fit at this width ends with (the hook ``benchmark.capacity`` prefers to a
        dry fit): with ``radius="matched"`` fit first trains an mm_dro whose network it then drops, and a dry
        fit, which stops at the first network handed to the trainer, would count that one instead."""
        method = cls(info, hparams)
        method._dep = DependenceEstimator(len(info.modalities)) if method._needs_dependence() else None
        return sum(p.numel() for p in method.build(width).parameters())

    def _needs_dependence(self) -> bool:
        return self.hparams.radius == "probe_budget" and self.hparams.dependence == "copula"

    def _current_budget(self) -> float:
        if self.hparams.radius == "own":
            return float(self.hparams.rho_ef)
        if self.hparams.radius == "matched":
            return float(self._matched["rho_ef"])
        return self._modality_aware_budget()

    def build(self, width: int) -> nn.Module:
        if self.hparams.network == "flat":
            in_dim = sum(m.size for m in self.info.modalities) + (len(self.info.modalities)
                                                                 if self.hparams.mask_as_input else 0)
            parts = {"fused": nn.Sequential(TabularEncoder(in_dim, width), nn.Linear(width, self.info.n_classes))}
        else:
            parts = per_modality_network(self.info, width)
        if self._dep is not None:
            parts["probe"] = nn.ModuleDict({m.name: nn.Sequential(nn.Flatten(), nn.Linear(m.size, self.info.n_classes))
                                            for m in self.info.modalities})
        return nn.ModuleDict(parts)

    def logits(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        if self.hparams.network == "per_modality":
            return per_modality_logits(self.net, self.info, x, mask)
        return self.net["fused"](concat_with_mask(self.info, x, mask, self.hparams.mask_as_input))

    def loss(self, batch: Batch) -> torch.Tensor:
        x, mask = self._train_inputs(batch)
        valid = batch.y >= 0
        total = self._robust(per_sample_ce(self.logits(x, mask), batch.y), valid)
        if self._dep is not None:
            v = valid.to(total.dtype)
            for j, m in enumerate(self.info.modalities):
                rows = v * mask[:, j].to(v.dtype)
                ce = per_sample_ce(self.net["probe"][m.name](x[m.name]), batch.y)
                total = total + (ce * rows).sum() / rows.sum().clamp(min=1.0)
        return total

    def _unimodal_losses(self, split: Split) -> tuple[torch.Tensor, torch.Tensor]:
        out = []
        for x, _mask, y in chunks(split):
            out.append(torch.stack([per_sample_ce(self.net["probe"][m.name](x[m.name]), y)
                                    for m in self.info.modalities], dim=1))
        return torch.cat(out), split.mask & (split.y >= 0).unsqueeze(1)

    # ---- the matched budget
    def fit(self, train: Split, val: Split, ctx: TrainContext) -> None:
        self._matched: dict[str, Any] | None = None
        if self.hparams.radius == "matched":
            self._matched = self._matched_budget(train, val, ctx)
        super().fit(train, val, ctx)

    def _matched_budget(self, train: Split, val: Split, ctx: TrainContext) -> dict[str, Any]:
        """Fit mm_dro as its own run of this spec would (same splits, a context from the same seed and budget,
        the global RNG state this fit was handed, restored afterwards so this fit starts from it too) and
        return its mean budget with the rule."""
        shared = {f.name: getattr(self.hparams, f.name) for f in dataclasses.fields(DROHparams)}
        mm = ModalityAwareDRO(self.info, MMDROHparams(**shared))
        inner = TrainContext.from_seed(ctx.seed, ctx.budget, ctx.device)
        devices = [ctx.device.index or 0] if ctx.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            mm.fit(train, val, inner)
        return {"rule": MATCHED_RULE, "rho_ef": mm.mean_budget(),
                "mm_dro_epochs_run": len(mm._B_history),
                "mm_dro_best_epoch": inner.fit_summary.get("best_epoch"),
                "mm_dro_B_per_epoch": [_round(b) for b in mm._B_history],
                "mm_dro_budget_B_final": _round(mm.budget_B)}

    def extras(self) -> dict[str, Any]:
        """The shared DRO diagnostics, the network and the radius rule; with ``radius="matched"`` the matched
        value (full precision), its rule and the mm_dro fit it came from (``matched_budget``)."""
        out = super().extras()
        if not out:
            return out
        rules = {"own": "rho_EF = rho_ef (fixed)", "matched": MATCHED_RULE,
                 "probe_budget": "B = mm_dro's formula every epoch, gamma from linear probes on the raw features"}
        out.update({"network": self.hparams.network, "radius": self.hparams.radius,
                    "radius_rule": rules[self.hparams.radius]})
        if self._matched is not None:
            out["matched_budget"] = dict(self._matched)
        return out
