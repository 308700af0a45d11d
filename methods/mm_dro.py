"""Modality-aware distributionally robust optimisation (Yang & Ma, arXiv 2511.05716; spec
shared/specs/dro_multimodal.md, section 2): per-modality chi-square balls combined through a shared
copula into one budget B, and a robust risk on the fused model's per-sample losses.

The network and loss live in ``methods/_dro.py`` (:class:`ModalityAwareDRO`), which ef_dro shares."""

from __future__ import annotations

from ._dro import MMDROHparams, ModalityAwareDRO


class MMDRO(ModalityAwareDRO):
    """Modality-aware DRO: one encoder per modality (``make_encoder``), a predictor f on the encodings
    and the mask, trained on a robust risk with budget B = sum_k rho_k + 2 sum_{i<j} |gamma_ij|
    sqrt(rho_i rho_j). gamma is estimated once per epoch from the per-sample losses of auxiliary unimodal
    heads on the training split (Spearman r mapped to the Gaussian-copula parameter 2 sin(pi r / 6),
    smoothed across epochs). A missing modality is zero-filled and flagged by the mask; rows without a
    label (y = -1) do not enter the robust or auxiliary losses.

    [SRC]: the budget formula, chi-square balls per modality, a shared copula, the closed-form surrogate
    mean + sqrt(B) std. [INF] as they now stand (each a hyperparameter, see ``MMDROHparams``): the network
    (per-modality encoders, an MLP head f on concat(e, mask); "late" head an ablation), the dependence
    estimator (auxiliary unimodal heads, Spearman -> 2 sin(pi r / 6), EMA 0.9, one warm-up epoch), the radii
    (rho_k = 0.1 each), the dual and reweighting objectives, the surrogate's cap at max l, the encoder-error
    form (off), modality dropout (off; p = 0.2 when on), early stopping on the robust validation risk, and
    zero-filling a missing modality with the mask as input.

    Controls (spec "Controls the suite must run"): ``rho = 0`` is ERM of this same network (B = 0 whatever
    gamma is; the auxiliary heads read detached encodings and never move the predictor), the suite row
    ``{name = "mm_dro", rho = 0.0, label = "mm_dro+erm"}``. ``extras()["budget_B_mean"]`` (the mean B over
    the epochs run) is the radius ef_dro's ``radius="matched"`` takes on the same data and seed.

    The shared budget (epochs, patience, batch size, learning rate, weight decay, width) is the runner's.
    Early stopping: ``early_stopping`` (default "robust", minus the robust validation risk, spec 2.4 [INF];
    recorded as ``fit_summary["stopping_criterion"]``).
    """

    name = "mm_dro"
    Hparams = MMDROHparams
