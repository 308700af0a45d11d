"""The coalition models of conformal_shapley: one early-fusion network per coalition of modalities, trained
together in one batched pass with early stopping per coalition ([SRC] one model per subset), or the fast mode's
single masked surrogate ([INF]); and :class:`CoalitionModels`, which trains them (lazily where permutation
sampling needs a coalition late) and gives each coalition's clipped log-probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from benchmark.contracts import DatasetInfo, Split, TrainContext
from benchmark.seeding import key_to_int, torch_generator
from benchmark.training import Batch, fit_network

from ._blocks import LOG_LIKELIHOOD, cross_entropy, labeled_log_likelihood, make_encoder, mean_log_likelihood, zero_fill


class CoalitionMLPs(nn.Module):
    """One early-fusion network per coalition (the early_fusion method's TabularEncoder + linear head on the
    concatenated features and the mask, with everything outside the coalition zeroed: x * mask(S), the input
    keeps its shape and nn.Linear's initialisation), stacked so that all coalitions train in one batched pass.

    Each coalition has its own parameters, its own initialisation seed and its own early stopping; nothing is
    shared. Since a zeroed input block meets its first-layer rows only in products with zero, those rows are
    not stored: the first layer is kept per modality for the coalitions that contain it (``w1[j]`` of shape
    (C_j, d_j + 1, H), the +1 being the modality's mask entry) and summed into the coalitions through a 0/1
    matrix. Rows are always picked by 0/1 matmuls, never by indexing, so the backward pass has no scatter."""

    def __init__(self, coalitions: Sequence[int], block_sizes: Sequence[int], width: int, n_classes: int,
                 seeds: Sequence[int]) -> None:
        super().__init__()
        self.coalitions = [int(c) for c in coalitions]
        self.block_sizes = [int(d) for d in block_sizes]
        d_all = sum(self.block_sizes)
        gens = [torch_generator(int(seed)) for seed in seeds]

        def draw(fan_in: int, shape: tuple[int, ...]) -> torch.Tensor:  # nn.Linear: U(+-1/sqrt(fan_in))
            bound = 1.0 / math.sqrt(fan_in)
            return torch.stack([(torch.rand(*shape, generator=g) * 2 - 1) * bound for g in gens])

        w1_full, b1 = draw(d_all, (d_all, width)), draw(d_all, (1, width))
        w2, b2 = draw(width, (width, width)), draw(width, (1, width))
        w3, b3 = draw(width, (width, n_classes)), draw(width, (1, n_classes))
        self.members: list[list[int]] = []
        self.w1 = nn.ParameterList()
        start = 0
        for j, d in enumerate(self.block_sizes):
            members = [c for c, bits in enumerate(self.coalitions) if bits >> j & 1]
            self.members.append(members)
            self.w1.append(nn.Parameter(w1_full[members, start:start + d].clone()))
            start += d
        self.b1, self.w2, self.b2 = nn.Parameter(b1), nn.Parameter(w2), nn.Parameter(b2)
        self.w3, self.b3 = nn.Parameter(w3), nn.Parameter(b3)

    def coalition_rows(self) -> list[list[int]]:
        """For each parameter (in ``parameters()`` order), the coalition of each row of its first dimension."""
        everyone = list(range(len(self.coalitions)))
        return [self.members[int(name.split(".")[1])] if name.startswith("w1.") else everyone
                for name, _ in self.named_parameters()]

    @staticmethod
    def _pick(param: torch.Tensor, rows: list[int]) -> torch.Tensor:
        """Rows of a stacked parameter through a 0/1 matmul (exact; its backward is a matmul, not the
        accumulating scatter of an indexing backward, so it stays deterministic on CUDA)."""
        pick = torch.as_tensor(np.eye(param.shape[0], dtype=np.float32)[rows], dtype=param.dtype, device=param.device)
        return (pick @ param.reshape(param.shape[0], -1)).reshape(len(rows), *param.shape[1:])

    def forward(self, inputs: torch.Tensor, which: Sequence[int] | None = None) -> torch.Tensor:
        """Logits (C', n, K) of the coalitions at positions ``which`` (default: all) on ``inputs`` (n, D)."""
        n = inputs.shape[0]
        every = which is None
        rows = list(range(len(self.coalitions))) if every else [int(i) for i in which]
        position = {c: r for r, c in enumerate(rows)}

        def pick(param: torch.Tensor) -> torch.Tensor:
            return param if every else self._pick(param, rows)

        h = pick(self.b1)
        start = 0
        for j, d in enumerate(self.block_sizes):
            cols = [col for col, c in enumerate(self.members[j]) if c in position]
            if cols:
                w = self.w1[j] if len(cols) == len(self.members[j]) else self._pick(self.w1[j], cols)
                part = torch.matmul(inputs[:, start:start + d], w)  # (C_j', n, H)
                into = np.zeros((len(rows), len(cols)), dtype=np.float32)
                into[[position[self.members[j][col]] for col in cols], np.arange(len(cols))] = 1.0
                into = torch.as_tensor(into, dtype=inputs.dtype, device=inputs.device)
                h = h + (into @ part.reshape(len(cols), -1)).reshape(len(rows), n, -1)
            start += d
        h = torch.relu(h)
        h = torch.relu(torch.bmm(h, pick(self.w2)) + pick(self.b2))
        return torch.bmm(h, pick(self.w3)) + pick(self.b3)


class PerCoalitionStopping:
    """Early stopping per coalition inside one ``fit_network`` call: each coalition keeps its own best
    validation score (the mean log-likelihood of the labelled validation samples, the benchmark's shared
    criterion [INF]; the authors' code trains each coalition for one epoch), stale counter and best weights,
    and stops when it has not improved for ``patience`` epochs. The score handed to the trainer is the running
    count of improvements, so the trainer stops exactly when every coalition has stopped (or at max_epochs).

    ``val_y`` may hold -1 (a removed label): such a row never counts."""

    #: Recorded as the trainer's ``stopping_criterion`` (the trainer's own score is the improvement count).
    criterion = f"per_coalition_{LOG_LIKELIHOOD}"

    def __init__(self, bank: CoalitionMLPs, val_inputs: torch.Tensor, val_y: torch.Tensor, patience: int) -> None:
        self.bank, self.val_inputs, self.val_y, self.patience = bank, val_inputs, val_y, patience
        c = len(bank.coalitions)
        dev = val_inputs.device
        self.best = torch.full((c,), -math.inf, device=dev)
        self.stale = torch.zeros(c, dtype=torch.long, device=dev)
        self.active = torch.ones(c, dtype=torch.bool, device=dev)
        self.improvements = 0
        self.rows = [torch.as_tensor(r, dtype=torch.long, device=dev) for r in bank.coalition_rows()]
        self.best_params = [p.detach().clone() for p in bank.parameters()]
        self.active_log: list[int] = []

    def active_rows(self) -> list[int] | None:
        """Positions of the coalitions still training (None: all of them). Stopped coalitions are left out of
        the forward pass: their best weights are kept aside, and the others' gradients do not depend on them."""
        if bool(self.active.all()):
            return None
        return [int(i) for i in torch.nonzero(self.active).flatten().tolist()]

    @torch.no_grad()
    def __call__(self) -> float:
        which = self.active_rows()
        rows = list(range(len(self.bank.coalitions))) if which is None else which
        improved = torch.zeros_like(self.active)
        if rows:
            logits = self.bank(self.val_inputs, which)
            score = torch.full_like(self.best, -math.inf)
            score[torch.as_tensor(rows, device=score.device)] = mean_log_likelihood(
                torch.log_softmax(logits, dim=2), self.val_y).to(score.dtype)
            improved = self.active & (score > self.best)
            self.best = torch.where(improved, score, self.best)
        self.stale = torch.where(improved, torch.zeros_like(self.stale), self.stale + 1)
        if bool(improved.any()):
            for p, keep, prow in zip(self.bank.parameters(), self.best_params, self.rows, strict=True):
                sel = improved[prow].reshape(-1, *([1] * (p.dim() - 1)))
                keep.copy_(torch.where(sel, p.detach(), keep))
        self.improvements += int(improved.sum())
        self.active &= self.stale < self.patience
        self.active_log.append(int(self.active.sum()))
        return float(self.improvements)

    @torch.no_grad()
    def restore(self) -> None:
        for p, keep in zip(self.bank.parameters(), self.best_params, strict=True):
            p.copy_(keep)


class MaskedSurrogate(nn.Module):
    """The fast mode's single model: one shared encoder per modality (``make_encoder``), each embedding times
    its presence bit, concatenated with the mask, then a two-layer head. Trained with random modality masking;
    a coalition is evaluated by masking everything outside it."""

    def __init__(self, info: DatasetInfo, width: int) -> None:
        super().__init__()
        self.names = [m.name for m in info.modalities]
        self.encoders = nn.ModuleDict({m.name: make_encoder(m, width) for m in info.modalities})
        m = len(info.modalities)
        self.head = nn.Sequential(nn.Linear(m * width + m, width), nn.ReLU(), nn.Linear(width, info.n_classes))

    def embed(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.stack([self.encoders[k](x[k]) for k in self.names], dim=1)  # (n, M, H)

    def head_logits(self, emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w = mask.to(emb.dtype)
        return self.head(torch.cat([(emb * w.unsqueeze(2)).flatten(1), w], dim=1))

    def forward(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        return self.head_logits(self.embed(zero_fill(x, mask)), mask)


class CoalitionModels(nn.Module):
    """The models mu_S of every coalition S, trained on the training part I1 and early-stopped on the validation
    split: one ``CoalitionMLPs`` stack per training call (at fit, then one per lazily needed coalition), or the
    single masked surrogate. The empty coalition is the trivial predictor ``trivial`` (class frequencies on I1).

    Each coalition's initialisation is keyed on (seed, coalition), and a lazily trained one gets its own context
    from a seed keyed the same way, so a coalition's model does not depend on when it was first needed."""

    def __init__(self, info: DatasetInfo, fit_part: Split, val: Split, trivial: torch.Tensor, ctx: TrainContext,
                 clip: float) -> None:
        super().__init__()
        self.info, self.m = info, len(info.modalities)
        self.fit_part, self.val, self.trivial, self.clip = fit_part, val, trivial, clip
        self.seed, self.budget, self.clock, self.device = ctx.seed, ctx.budget, ctx.clock, ctx.device
        self.banks = nn.ModuleList()
        self.surrogate: MaskedSurrogate | None = None
        self.where: dict[int, tuple[int, int]] = {}  # coalition bits -> (bank, row)
        self.n_lazy = 0
        self.active_log: list[int] = []  # coalitions still training, per epoch, of the latest bank

    def inputs(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """Per modality, its flattened features then its mask entry (the coalition networks' input blocks)."""
        n = mask.shape[0]
        parts = []
        for j, m in enumerate(self.info.modalities):
            parts += [x[m.name].reshape(n, -1), mask[:, j : j + 1].to(x[m.name].dtype)]
        return torch.cat(parts, dim=1)

    def coalition_seed(self, bits: int) -> int:
        return key_to_int("conformal_shapley", "coalition", self.seed, bits) % (2**62)

    def train_bank(self, coalitions: Sequence[int], ctx: TrainContext) -> None:
        bank = CoalitionMLPs(coalitions, [m.size + 1 for m in self.info.modalities], ctx.budget.width,
                             self.info.n_classes, [self.coalition_seed(b) for b in coalitions]).to(self.device)
        train = self.fit_part
        inputs = self.inputs(train.x, train.mask)
        tensor_split = Split(x={"_inputs": inputs}, mask=torch.ones(len(train), 1, dtype=torch.bool,
                                                                   device=self.device),
                             y=train.y, labeled=train.labeled, ids=train.ids)
        val = self.val
        stopper = PerCoalitionStopping(bank, self.inputs(val.x, val.mask)[val.labeled], val.y[val.labeled],
                                       ctx.budget.patience)

        def loss(batch: Batch) -> torch.Tensor:  # the sum over coalitions of each one's mean cross-entropy
            logits = bank(batch.x["_inputs"], stopper.active_rows())
            n_c = logits.shape[0]
            return n_c * cross_entropy(logits.reshape(-1, logits.shape[2]), batch.y.repeat(n_c))

        fit_network(bank, loss, tensor_split, ctx, val_score=stopper, criterion=stopper.criterion)
        self.active_log = stopper.active_log
        stopper.restore()
        bank.eval()
        pos = len(self.banks)
        self.banks.append(bank)
        for i, bits in enumerate(coalitions):
            self.where[int(bits)] = (pos, i)

    def ensure_trained(self, coalitions: Sequence[int]) -> None:
        """Lazily train the coalitions not trained yet, each alone with a context keyed on the coalition."""
        if self.surrogate is not None:
            return
        for bits in sorted({int(b) for b in coalitions} - set(self.where) - {0}):
            ctx = TrainContext.from_seed(self.coalition_seed(bits), self.budget, self.device, self.clock)
            with torch.enable_grad():
                self.train_bank([bits], ctx)
            self.n_lazy += 1

    def train_surrogate(self, keep_prob: float, ctx: TrainContext) -> None:
        """The fast mode: one model, each present modality kept with probability ``keep_prob`` per sample."""
        self.surrogate = MaskedSurrogate(self.info, ctx.budget.width).to(self.device)
        val = self.val

        def loss(batch: Batch) -> torch.Tensor:
            keep = torch.rand(batch.mask.shape, generator=ctx.generator).to(self.device) < keep_prob
            mask = batch.mask & keep
            return cross_entropy(self.surrogate(batch.x, mask), batch.y)

        def score() -> float:  # the mean log-likelihood of the labelled validation samples [INF]
            with torch.no_grad():
                proba = torch.softmax(self.surrogate(val.x, val.mask), dim=1)
            return labeled_log_likelihood(proba, val)

        fit_network(self.surrogate, loss, self.fit_part, ctx, val_score=score, criterion=LOG_LIKELIHOOD)
        self.surrogate.eval()

    @torch.no_grad()
    def log_proba(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor, coalitions: Sequence[int]) -> torch.Tensor:
        """log-probabilities (len(coalitions), n, K) of the coalition models on zero-filled inputs; the empty
        coalition is the trivial predictor. Probabilities are clipped to [clip, 1] first."""
        n = mask.shape[0]
        out = []
        if self.surrogate is not None:
            xz = zero_fill(x, mask)
            emb = self.surrogate.embed(xz)
            for bits in coalitions:
                if bits == 0:
                    out.append(self._trivial_log_proba(n))
                    continue
                sub = mask & torch.tensor([bool(bits >> j & 1) for j in range(self.m)], device=mask.device)
                out.append(torch.log_softmax(self.surrogate.head_logits(emb, sub), dim=1))
        else:
            self.ensure_trained(coalitions)
            inputs = self.inputs(zero_fill(x, mask), mask)
            by_stack: dict[int, list[int]] = {}
            for bits in coalitions:
                if bits != 0:
                    by_stack.setdefault(self.where[int(bits)][0], []).append(self.where[int(bits)][1])
            computed = {}
            for pos, which in by_stack.items():
                logits = self.banks[pos](inputs, which)
                for i, row in zip(which, logits, strict=True):
                    computed[(pos, i)] = torch.log_softmax(row, dim=1)
            out = [self._trivial_log_proba(n) if bits == 0 else computed[self.where[int(bits)]]
                   for bits in coalitions]
        logp = torch.stack(out) if out else torch.zeros(0, n, self.info.n_classes, device=mask.device)
        return torch.log(torch.clamp(logp.exp(), min=self.clip, max=1.0))

    def _trivial_log_proba(self, n: int) -> torch.Tensor:
        return torch.log(self.trivial.clamp(min=1e-30)).unsqueeze(0).expand(n, -1)

    @torch.no_grad()
    def proba_selected(self, x: Mapping[str, torch.Tensor], mask: torch.Tensor, bits: np.ndarray) -> torch.Tensor:
        """Each sample predicted by its selected coalition's model, grouped by coalition (no scatter: the groups
        are concatenated in sorted order and put back with a gather)."""
        order = np.argsort(bits, kind="stable")
        sorted_bits = bits[order]
        uniq, starts = np.unique(sorted_bits, return_index=True)
        ends = [*starts[1:], len(bits)]
        self.ensure_trained([int(b) for b in uniq])
        parts = []
        for b, s, e in zip(uniq, starts, ends, strict=True):
            rows = torch.as_tensor(order[s:e], device=mask.device)
            sub_x = {k: v[rows] for k, v in x.items()}
            parts.append(self.log_proba(sub_x, mask[rows], [int(b)])[0])
        if not parts:
            return torch.zeros(0, self.info.n_classes, device=mask.device)
        logp = torch.cat(parts)
        inverse = torch.as_tensor(np.argsort(order, kind="stable"), device=mask.device)
        return torch.softmax(logp[inverse], dim=1)
