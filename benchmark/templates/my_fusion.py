"""A template method: copy it to methods/my_fusion.py (or keep it anywhere and pass --method-file)."""

from dataclasses import dataclass

import torch
from torch import nn

from benchmark.hparams import LogUniform, hparam

from ._blocks import TorchMethod, cross_entropy, make_encoder


@dataclass(frozen=True)
class MyFusionHparams:
    # Every hyperparameter has a default (the paper's) and, for search, a space.
    temperature: float = hparam(1.0, LogUniform(0.3, 3.0))


class MyFusion(TorchMethod):
    """Mean of per-modality embeddings over the present modalities, then one linear head.

    Hyperparameters: ``temperature`` (default 1.0) divides the logits."""

    name = "my_fusion"  # the registry key
    Hparams = MyFusionHparams

    def build(self, width: int) -> nn.Module:  # the network; the width is the suite's, shared by all
        encoders = nn.ModuleDict({m.name: make_encoder(m, width) for m in self.info.modalities})
        return nn.ModuleDict({"enc": encoders, "head": nn.Linear(width, self.info.n_classes)})

    def logits(self, x, mask) -> torch.Tensor:  # x is zero-filled where mask is False
        z = torch.stack([self.net["enc"][m](x[m]) for m in x], 1) * mask.unsqueeze(2)
        pooled = z.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return self.net["head"](pooled) / self.hparams.temperature

    def loss(self, batch) -> torch.Tensor:  # the training objective on one minibatch
        return cross_entropy(self.logits(batch.x, batch.mask), batch.y)
