"""Modality-aware distributionally robust optimisation (Yang & Ma, arXiv 2511.05716; spec
shared/specs/dro_multimodal.md, section 2): per-modality chi-square balls combined through a shared
copula into one budget B, and a robust risk on the fused model's per-sample losses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from benchmark.contracts import Split
from benchmark.hparams import hparam

from ._blocks import Batch, make_encoder
from ._dro import NON_NEGATIVE, DROHparams, DROMethod, chunks, per_sample_ce


@dataclass(frozen=True)
class MMDROHparams(DROHparams):
    head: str = hparam("mlp", source="INF", allowed=("mlp", "late"),
                       doc='predictor f on the encodings: "mlp" (one hidden layer on concat(e_1..e_M, mask)) or '
                           '"late" (a linear head per modality, averaged over the present modalities; the ablation '
                           'of the spec)')
    aux_head: str = hparam("linear", source="INF", allowed=("linear", "mlp"),
                           doc='auxiliary unimodal heads (for the dependence estimate): "linear" or "mlp" (one '
                               'hidden layer)')
    aux_detach: bool = hparam(True, source="INF",
                              doc="train the auxiliary heads on detached encodings, so they measure the encoders "
                                  "without changing them")
    encoder_error_weight: float = hparam(0.0, source="SRC/INF", allowed=NON_NEGATIVE,
                                         doc="encoder-error extension (spec 2.3(e); SRC: it exists, INF: its form): "
                                             "weight L of sum_k L * eps_k, with eps_k the mean increase of the "
                                             "per-sample loss when modality k's input gets Gaussian noise; 0 = off "
                                             "(the spec's default)")
    encoder_error_noise: float = hparam(0.1, source="INF", allowed=NON_NEGATIVE,
                                        doc="standard deviation of that input noise")


class MMDRO(DROMethod):
    """Modality-aware DRO: one encoder per modality (``make_encoder``), a predictor f on the encodings
    and the mask, trained on a robust risk with budget B = sum_k rho_k + 2 sum_{i<j} |gamma_ij|
    sqrt(rho_i rho_j). gamma is estimated once per epoch from the per-sample losses of auxiliary unimodal
    heads on the training split (Spearman r mapped to the Gaussian-copula parameter 2 sin(pi r / 6),
    smoothed across epochs). A missing modality is zero-filled and flagged by the mask; rows without a
    label (y = -1) do not enter the robust or auxiliary losses.

    Hyperparameters: see the ``MMDROHparams`` fields (doc; [SRC] = from the paper's reachable text, TL;DR and
    abstract; [INF] = reconstruction, the spec's default).

    The shared budget (epochs, patience, batch size, learning rate, weight decay, width) is the runner's.
    Early stopping: ``early_stopping`` (default "robust", minus the robust validation risk, spec 2.4 [INF];
    recorded as ``fit_summary["stopping_criterion"]``).
    """

    name = "mm_dro"
    Hparams = MMDROHparams

    def _current_budget(self) -> float:
        return self._modality_aware_budget()

    def build(self, width: int) -> nn.Module:
        mods, K, M = self.info.modalities, self.info.n_classes, len(self.info.modalities)
        parts = {"enc": nn.ModuleDict({m.name: make_encoder(m, width) for m in mods})}
        if self.hparams.head == "mlp":
            parts["head"] = nn.Sequential(nn.Linear(M * width + M, width), nn.ReLU(), nn.Linear(width, K))
        else:
            parts["head"] = nn.ModuleDict({m.name: nn.Linear(width, K) for m in mods})
        if self._dep is not None:
            def aux() -> nn.Module:
                if self.hparams.aux_head == "linear":
                    return nn.Linear(width, K)
                return nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, K))
            parts["aux"] = nn.ModuleDict({m.name: aux() for m in mods})
        return nn.ModuleDict(parts)

    # ---- network pieces
    def _encode(self, x: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        return [self.net["enc"][m.name](x[m.name]) for m in self.info.modalities]

    def _head(self, enc: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        if self.hparams.head == "mlp":
            return self.net["head"](torch.cat([*enc, mask.to(enc[0].dtype)], dim=1))
        logits = torch.stack([self.net["head"][m.name](e) for m, e in zip(self.info.modalities, enc, strict=True)],
                             dim=1)
        w = mask.to(logits.dtype).unsqueeze(2)
        return (logits * w).sum(dim=1) / w.sum(dim=1).clamp(min=1.0)

    def logits(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        return self._head(self._encode(x), mask)

    def _aux_logits(self, enc: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.net["aux"][m.name](e.detach() if self.hparams.aux_detach else e)
                for m, e in zip(self.info.modalities, enc, strict=True)]

    # ---- training
    def loss(self, batch: Batch) -> torch.Tensor:
        x, mask = self._train_inputs(batch)
        valid = batch.y >= 0
        enc = self._encode(x)
        losses = per_sample_ce(self._head(enc, mask), batch.y)
        total = self._robust(losses, valid)
        if self.hparams.encoder_error_weight > 0:
            total = total + self.hparams.encoder_error_weight * self._encoder_error(x, mask, enc, losses, batch.y)
        if self._dep is not None:
            v = valid.to(losses.dtype)
            for j, logit in enumerate(self._aux_logits(enc)):
                rows = v * mask[:, j].to(v.dtype)
                total = total + (per_sample_ce(logit, batch.y) * rows).sum() / rows.sum().clamp(min=1.0)
        return total

    def _encoder_error(self, x, mask, enc, losses, y) -> torch.Tensor:
        """sum_k eps_k, eps_k = mean over labelled rows of (loss with modality k's input noised - loss)_+."""
        v = (y >= 0).to(losses.dtype)
        err = losses.new_zeros(())
        for j, m in enumerate(self.info.modalities):
            xk = x[m.name]
            noise = torch.randn(tuple(xk.shape), generator=self.ctx.generator).to(xk.device, xk.dtype)
            keep = mask[:, j].reshape(-1, *([1] * (xk.dim() - 1))).to(xk.dtype)
            noisy = list(enc)
            noisy[j] = self.net["enc"][m.name](xk + self.hparams.encoder_error_noise * noise * keep)
            lk = per_sample_ce(self._head(noisy, mask), y)
            err = err + (v * (lk - losses).clamp(min=0.0)).sum() / v.sum().clamp(min=1.0)
        return err

    def _unimodal_losses(self, split: Split) -> tuple[torch.Tensor, torch.Tensor]:
        out = []
        for x, _mask, y in chunks(split):
            enc = self._encode(x)
            out.append(torch.stack([per_sample_ce(lg, y) for lg in self._aux_logits(enc)], dim=1))
        losses = torch.cat(out)
        valid = split.mask & (split.y >= 0).unsqueeze(1)
        return losses, valid
