"""Late fusion: one encoder and head per modality; the prediction combines the available modalities only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from benchmark.hparams import Choice, hparam

from ._blocks import TorchMethod, cross_entropy, make_encoder


@dataclass(frozen=True)
class LateFusionHparams:
    combine: str = hparam("mean_proba", Choice(("mean_proba", "mean_log_proba")), source="suite",
                          allowed=("mean_proba", "mean_log_proba"),
                          doc='how the per-modality predictions are combined: "mean_proba" (average of '
                              'probabilities) or "mean_log_proba" (a product of experts, renormalised)')


class LateFusion(TorchMethod):
    """Each modality has its own encoder and classifier head, trained with its own cross-entropy on
    the samples where that modality is present; at test time only present modalities vote.

    Hyperparameters: see the ``LateFusionHparams`` fields (doc and source tag). Early stopping: the mean
    log-likelihood of the labelled validation samples (``TorchMethod.val_score``) [INF: the benchmark's shared
    criterion]."""

    name = "late_fusion"
    Hparams = LateFusionHparams

    def build(self, width: int) -> nn.Module:
        return nn.ModuleDict({
            m.name: nn.Sequential(make_encoder(m, width), nn.Linear(width, self.info.n_classes))
            for m in self.info.modalities
        })

    def _per_modality(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.stack([self.net[m.name](x[m.name]) for m in self.info.modalities], dim=1)  # (n, M, C)

    def loss(self, batch) -> torch.Tensor:
        logits = self._per_modality(batch.x)
        return sum(cross_entropy(logits[:, j], batch.y, rows=batch.mask[:, j]) for j in range(logits.shape[1]))

    def logits(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(self._per_modality(x), dim=2)
        w = mask.to(logp.dtype).unsqueeze(2)
        n_present = w.sum(dim=1).clamp(min=1.0)
        if self.hparams.combine == "mean_log_proba":
            return (logp * w).sum(dim=1) / n_present
        # log of the mean of the present modalities' probabilities; the runner applies the softmax.
        return torch.log((logp.exp() * w).sum(dim=1) / n_present + 1e-30)
