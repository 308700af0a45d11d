"""Early fusion: the raw features of every modality concatenated, with the mask as input, one network."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from benchmark.hparams import Choice, hparam

from ._blocks import TabularEncoder, TorchMethod, concat_with_mask, cross_entropy


@dataclass(frozen=True)
class EarlyFusionHparams:
    mask_as_input: bool = hparam(True, Choice((True, False)), source="suite",
                                 doc="feed the mask as extra inputs, so the network can tell a missing modality "
                                     "from zeros")


class EarlyFusion(TorchMethod):
    """Concatenate all modalities (images flattened), append the mask, classify with one MLP.

    Hyperparameters: see the ``EarlyFusionHparams`` fields (doc and source tag). Early stopping: the mean
    log-likelihood of the labelled validation samples (``TorchMethod.val_score``) [INF: the benchmark's shared
    criterion]."""

    name = "early_fusion"
    Hparams = EarlyFusionHparams

    def build(self, width: int) -> nn.Module:
        in_dim = sum(m.size for m in self.info.modalities)
        if self.hparams.mask_as_input:
            in_dim += len(self.info.modalities)
        return nn.Sequential(TabularEncoder(in_dim, width), nn.Linear(width, self.info.n_classes))

    def _inputs(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        return concat_with_mask(self.info, x, mask, self.hparams.mask_as_input)

    def loss(self, batch) -> torch.Tensor:
        return cross_entropy(self.net(self._inputs(batch.x, batch.mask)), batch.y)

    def logits(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        return self.net(self._inputs(x, mask))
