"""Shared building blocks: one encoder per modality kind, one width setting, and a base class that turns
a method into three small pieces (``build``, ``loss``, ``logits``) on top of the generic trainer.

Methods share these so that they differ in their objective, not in capacity.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.contracts import DatasetInfo, Method, Modality, Split, TrainContext
from benchmark.training import Batch, fit_network, labeled_accuracy  # noqa: F401 - Batch for subclasses

#: The default early-stopping criterion of every method (DESIGN.md, "Method contract"): the mean
#: log-likelihood of the labelled validation samples, higher is better.
LOG_LIKELIHOOD = "log_likelihood"
#: Probabilities are clipped here before the log, as in the runner's NLL (``benchmark.metrics.NLL_EPS``).
LOG_EPS = 1e-12


def mean_log_likelihood(log_proba: torch.Tensor, y: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over ``rows`` (default: y >= 0) of log p(y_i | x_i), from log-probabilities of shape (..., n, K);
    returns shape (...) (e.g. one value per coalition of a stacked model). Rows outside ``rows`` or with
    y < 0 are never read: ``torch.where`` selects only the true class of the counted rows (no gather, no
    boolean indexing, and a NaN in a row that does not count cannot leak in). 0.0 when no row counts."""
    keep = (y >= 0) if rows is None else rows & (y >= 0)
    pick = F.one_hot(y.clamp(min=0), log_proba.shape[-1]).bool() & keep.unsqueeze(1)  # (n, K)
    true = torch.where(pick, log_proba, torch.zeros((), dtype=log_proba.dtype, device=log_proba.device)).sum(dim=-1)
    w = keep.to(log_proba.dtype)
    return (true * w).sum(dim=-1) / w.sum().clamp(min=1.0)


def labeled_log_likelihood(proba: torch.Tensor, split: Split) -> float:
    """The default early-stopping score: mean log-likelihood log p(y_i | x_i) of the samples of ``split``
    that carry a label (``split.labeled`` and y >= 0; a removed label is never read), from probabilities
    clipped to [1e-12, 1] before the log (as the runner's NLL). Higher is better; 0.0 (a constant, so the
    first eligible epoch is kept) when no sample carries a label.

    Unlike accuracy, it moves when the predicted probabilities move, so on an imbalanced dataset it does not
    stay flat while every prediction is still the majority class (issue 19)."""
    log_proba = torch.log(proba.clamp(min=LOG_EPS, max=1.0))
    return float(mean_log_likelihood(log_proba, split.y, split.labeled))


class TabularEncoder(nn.Module):
    """Two-layer MLP on the flattened features."""

    def __init__(self, in_dim: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_dim, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ImageEncoder(nn.Module):
    """Small CNN: two 3x3 conv + max-pool stages, then a linear map to ``width``. Max-pooling and a fixed
    flatten (not adaptive pooling) keep the backward pass deterministic on CUDA."""

    def __init__(self, shape: tuple[int, ...], width: int) -> None:
        super().__init__()
        channels = shape[0] if len(shape) == 3 else 1
        self.shape = (channels, *shape[-2:])
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.features(torch.zeros(1, *self.shape)).shape[1]
        self.proj = nn.Sequential(nn.Linear(flat, width), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.features(x.reshape(-1, *self.shape)))


class SequenceEncoder(nn.Module):
    """1-D convolution over time (input ``(n, channels, length)``), then the mean over time."""

    def __init__(self, shape: tuple[int, ...], width: int) -> None:
        super().__init__()
        channels = shape[0] if len(shape) == 2 else 1
        self.channels = channels
        self.conv = nn.Sequential(nn.Conv1d(channels, width, 5, padding=2), nn.ReLU(),
                                  nn.Conv1d(width, width, 5, padding=2), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.reshape(x.shape[0], self.channels, -1)).mean(dim=2)


def make_encoder(modality: Modality, width: int) -> nn.Module:
    if modality.kind == "tabular":
        return TabularEncoder(modality.size, width)
    if modality.kind == "image":
        return ImageEncoder(modality.shape, width)
    if modality.kind == "sequence":
        return SequenceEncoder(modality.shape, width)
    raise ValueError(f"no encoder for modality kind {modality.kind!r} (tabular, image, sequence)")


def cross_entropy(logits: torch.Tensor, y: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy over ``rows`` (default: the labelled rows, y >= 0; unlabelled rows hold -1).

    The per-sample (N, C) form has deterministic CUDA kernels; only the spatial NLL loss does not."""
    rows = (y >= 0) if rows is None else rows & (y >= 0)
    per_sample = F.cross_entropy(logits, y.clamp(min=0), reduction="none")
    weight = rows.to(logits.dtype)
    return (per_sample * weight).sum() / weight.sum().clamp(min=1.0)


def concat_with_mask(info: DatasetInfo, x: Mapping[str, torch.Tensor], mask: torch.Tensor,
                     mask_as_input: bool = True) -> torch.Tensor:
    """Early fusion's input: every modality flattened and concatenated, then (optionally) the mask."""
    parts = [x[m.name].reshape(mask.shape[0], -1) for m in info.modalities]
    if mask_as_input:
        parts.append(mask.to(parts[0].dtype))
    return torch.cat(parts, dim=1)


def zero_fill(x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Zero every entry behind the mask, so no method can read a missing modality's values."""
    out = {}
    for j, (name, v) in enumerate(x.items()):
        keep = mask[:, j].reshape(-1, *([1] * (v.dim() - 1))).to(v.dtype)
        out[name] = v * keep
    return out


class TorchMethod(Method):
    """A method is ``build`` (its network), ``loss`` (on a training batch) and ``logits`` (on inputs);
    fitting, early stopping and the masking guarantee are here, once.

    Early stopping keeps the weights with the best ``val_score()``: by default the mean log-likelihood of the
    labelled validation samples (``labeled_log_likelihood``, named ``stopping_criterion``); a subclass whose
    spec names another criterion overrides both."""

    net: nn.Module
    #: Recorded in ``fit_summary["stopping_criterion"]``; names what ``val_score`` measures.
    stopping_criterion: str = LOG_LIKELIHOOD

    def __init__(self, info: DatasetInfo, hparams=None) -> None:
        super().__init__(info, hparams)
        self.device = torch.device("cpu")

    def build(self, width: int) -> nn.Module:
        raise NotImplementedError

    def loss(self, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def logits(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def on_epoch_start(self, epoch: int) -> None:
        """Called before each epoch (``self.train_split`` is the training split). Default: nothing."""

    def on_epoch_end(self, epoch: int) -> None:
        """Called after each epoch's last step, before validation. Default: nothing."""

    def val_score(self) -> float:
        """The early-stopping score on ``self.val_split`` (higher is better): the mean log-likelihood of its
        labelled samples under ``predict_proba`` [INF: the benchmark's shared criterion]."""
        val = self.val_split
        return labeled_log_likelihood(self.predict_proba(val.x, val.mask), val)

    def fit(self, train: Split, val: Split, ctx: TrainContext) -> None:
        self.device = ctx.device
        self.ctx = ctx
        self.train_split, self.val_split = train, val
        self.net = self.build(ctx.budget.width).to(ctx.device)
        # Training splits already hold zeros behind the mask (Split.with_inputs), so batches go as they are.
        fit_network(
            self.net,
            self.loss,
            train,
            ctx,
            val_score=self.val_score,
            on_epoch_start=self.on_epoch_start,
            on_epoch_end=self.on_epoch_end,
            criterion=self.stopping_criterion,
        )

    @torch.no_grad()
    def predict_proba(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        self.net.eval()
        return torch.softmax(self.logits(zero_fill(x, mask), mask), dim=1)
