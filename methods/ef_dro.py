"""Early-fusion DRO baseline (spec shared/specs/dro_multimodal.md, 2.2 and 2.3(f)): the early-fusion network
(raw features of every modality concatenated, with the mask) trained on a robust risk with one chi-square
ball around the joint distribution."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from benchmark.contracts import Split
from benchmark.hparams import Choice, hparam

from ._blocks import Batch, TabularEncoder, concat_with_mask
from ._dro import NON_NEGATIVE, RHO_GRID, DROHparams, DROMethod, chunks, per_sample_ce


@dataclass(frozen=True)
class EFDROHparams(DROHparams):
    rho_ef: float = hparam(0.1, Choice(RHO_GRID), source="SRC/INF", allowed=NON_NEGATIVE,
                           doc="the single radius rho_EF of the joint chi-square ball [SRC: one ball around the joint "
                               "distribution; INF: its value] (spec 2.3(f): tuned on the grid of rho_k, which is its "
                               "search space)")
    radius: str = hparam("own", source="INF", allowed=("own", "matched"),
                         doc='"own": B = rho_ef; "matched": B is the modality-aware budget sum_k rho_k + 2 sum '
                             '|gamma_ij| sqrt(rho_i rho_j) built from rho / rho_by_modality and dependence as in '
                             'mm_dro, so the two are compared at equal budget (spec 2.3(f))')
    mask_as_input: bool = hparam(True, source="INF", doc="feed the mask as extra inputs (as early_fusion)")


class EFDRO(DROMethod):
    """Early-fusion DRO: one MLP on the concatenated raw features and the mask (early_fusion's network and
    input), trained on the same robust objectives as mm_dro with a single radius. Missing modalities are
    zero-filled and flagged by the mask; unlabelled rows (y = -1) do not enter the loss.

    With ``radius="matched"`` the budget is mm_dro's B; gamma then comes from auxiliary linear probes, one
    per modality on its raw (zero-filled) features, trained on the side (they never feed the prediction),
    whose per-sample losses go through the same Spearman -> Gaussian-copula -> EMA estimator.

    Hyperparameters: see the ``EFDROHparams`` fields (doc; [SRC] = from the paper's reachable text, [INF] =
    reconstruction, the spec's default).

    The shared budget (epochs, patience, batch size, learning rate, weight decay, width) is the runner's.
    Early stopping: ``early_stopping`` (default "robust", minus the robust validation risk, spec 2.4 [INF];
    recorded as ``fit_summary["stopping_criterion"]``).
    """

    name = "ef_dro"
    Hparams = EFDROHparams

    def _needs_dependence(self) -> bool:
        return self.hparams.radius == "matched" and self.hparams.dependence == "copula"

    def _current_budget(self) -> float:
        if self.hparams.radius == "own":
            return float(self.hparams.rho_ef)
        return self._modality_aware_budget()

    def build(self, width: int) -> nn.Module:
        in_dim = sum(m.size for m in self.info.modalities) + (len(self.info.modalities) if self.hparams.mask_as_input
                                                             else 0)
        parts = {"fused": nn.Sequential(TabularEncoder(in_dim, width), nn.Linear(width, self.info.n_classes))}
        if self._dep is not None:
            parts["probe"] = nn.ModuleDict({m.name: nn.Sequential(nn.Flatten(), nn.Linear(m.size, self.info.n_classes))
                                            for m in self.info.modalities})
        return nn.ModuleDict(parts)

    def logits(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
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
