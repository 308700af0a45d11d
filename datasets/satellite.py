"""Landsat satellite (UCI Statlog, from R mlbench): visible against near-infrared bands of 3x3 pixels."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np

from benchmark.contracts import Modality
from benchmark.data import Dataset, DatasetCard, MissingSourceError, RawData
from benchmark.paths import data_dir

from ._packaged import encode_labels, require_version

DEB = "r-cran-mlbench"
DEB_VERSION = "2.1-3-1"
RDA = Path("usr/lib/R/site-library/mlbench/data/Satellite.rda")
#: Column x.(4p+b) is pixel p (0..8, row-major) in band b (1 green, 2 red, 3 and 4 near-infrared).
VISIBLE = [f"x.{4 * p + b}" for p in range(9) for b in (1, 2)]
NEAR_INFRARED = [f"x.{4 * p + b}" for p in range(9) for b in (3, 4)]


def source_dir() -> Path:
    return data_dir() / "sources" / f"{DEB}_{DEB_VERSION}"


def fetch_rda() -> Path:
    """The .rda inside Debian's r-cran-mlbench: downloaded and unpacked (no R, no install) if needed."""
    target = source_dir()
    rda = target / RDA
    if rda.exists():
        return rda
    how = (f"mkdir -p {target} && cd {target} && apt-get download {DEB}={DEB_VERSION} && "
           f"dpkg-deb -x {DEB}_{DEB_VERSION}_*.deb .   (on Debian or Ubuntu; run `apt-get update` first if "
           "apt cannot find it)")
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        raise MissingSourceError(f"satellite needs Debian's {DEB} {DEB_VERSION}, and apt-get / dpkg-deb are not "
                                 f"available here. On a Debian machine run: {how}; then copy {target} here.")
    target.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["apt-get", "download", f"{DEB}={DEB_VERSION}"], cwd=target, check=True,
                       capture_output=True, text=True, timeout=300)
        deb = next(target.glob(f"{DEB}_{DEB_VERSION}_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True, capture_output=True, text=True)
    except (subprocess.SubprocessError, StopIteration) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise MissingSourceError(f"could not fetch {DEB} {DEB_VERSION} with apt ({detail.strip()}); "
                                 f"run: {how}") from exc
    if not rda.exists():
        raise MissingSourceError(f"{DEB} {DEB_VERSION} unpacked without {RDA}; run: {how}")
    return rda


class Satellite(Dataset):
    """6435 Landsat 3x3 neighbourhoods in 6 soil and crop classes: the visible sensor (green, red) and the
    near-infrared sensor (two bands), each 9 pixels x 2 bands."""

    name = "satellite"
    modalities = (Modality("visible", "tabular", (18,)), Modality("near_infrared", "tabular", (18,)))
    n_classes = 6
    card = DatasetCard(
        source=f"Debian {DEB} {DEB_VERSION}, {RDA} (UCI Statlog Landsat Satellite), read with PyPI rdata",
        package=DEB, version=DEB_VERSION, file=str(RDA),
        licence="data: CC BY 4.0 (UCI); as packaged: GPL-2 (mlbench)",
        citation="Srinivasan, A. (1993). Statlog (Landsat Satellite) [Dataset]. UCI Machine Learning Repository. "
        "https://doi.org/10.24432/C55887",
        modalities={"visible": "green and red bands of the 3x3 pixels (18 values)",
                    "near_infrared": "the two near-infrared bands of the 3x3 pixels (18 values)"},
        notes="Classes: the 6 class names in sorted order. Split: stratified 60/20/20, re-drawn per seed. "
        "`prepare` downloads and unpacks the Debian package with apt-get download + dpkg-deb (no R needed).",
        primary_metric="accuracy",
    )

    def build(self) -> RawData:
        require_version("rdata", "1.1.0", "pip install --no-deps rdata==1.1.0 xarray")
        import rdata

        path = fetch_rda()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Unknown encoding. Assumed ASCII."
            df = rdata.read_rda(str(path))["Satellite"]
        y, _ = encode_labels(df["classes"])
        x = {"visible": df[VISIBLE].to_numpy(np.float64), "near_infrared": df[NEAR_INFRARED].to_numpy(np.float64)}
        return RawData(x=x, y=y, ids=np.array([f"satellite-{i:04d}" for i in range(len(df))]), sources=[path])
