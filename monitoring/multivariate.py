"""Multivariate drift: PCA reconstruction error, NannyML's data reconstruction method.

Per-column tests miss a change in how columns move *together* (each marginal intact, the
correlation gone or reversed). PCA fitted on the reference learns the reference's
correlation structure; rows that follow it are reconstructed well from the principal
components, rows that break it are not. The mean reconstruction error of a window is
compared with its spread over chunks of the reference.

Steps (as NannyML's DataReconstructionDriftCalculator, but with the band measured on
reference rows the PCA was not fitted on): impute missing values (numeric
mean, categorical most frequent), encode categories by their reference frequency,
standardize, keep the components explaining 65% of the variance, and measure each row's
Euclidean distance to its reconstruction. The alarm band is mean +- 3 sigma of the
mean errors of reference chunks; sigma is rescaled by sqrt(chunk_size / window_size),
since a mean over more rows varies less, so windows of any size share one false-alarm
rate.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=6000); ref = pd.DataFrame({"a": x, "b": x + 0.3 * rng.normal(size=6000)})
>>> detector = ReconstructionDrift().fit(ref)
>>> x = rng.normal(size=1000)
>>> detector.detect(pd.DataFrame({"a": x, "b": x + 0.3 * rng.normal(size=1000)}))["drifted"]
False
>>> detector.detect(pd.DataFrame({"a": x, "b": -x + 0.3 * rng.normal(size=1000)}))["drifted"]
True

Reference: NannyML, "Data reconstruction with PCA" (2022),
https://nannyml.readthedocs.io/en/stable/how_it_works/multivariate_drift.html; Pearson,
"On lines and planes of closest fit to systems of points in space", 1901 (PCA).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from modelwatch.monitoring.drift.profile import CATEGORICAL, infer_kind

FORMAT = "modelwatch.reconstruction_drift"


class ReconstructionDrift:
    """PCA reconstruction-error drift detector (fit on the reference, then detect)."""

    def __init__(
        self,
        variance: float = 0.65,
        chunk_size: int | None = None,
        n_sigma: float = 3.0,
        max_fit_rows: int = 100_000,
        n_chunks: int = 200,
        seed: int = 0,
    ):
        self.variance = variance
        self.chunk_size = chunk_size
        self.n_sigma = n_sigma
        self.max_fit_rows = max_fit_rows
        self.n_chunks = n_chunks
        self.seed = seed
        self.fitted = False

    # -- encoding ------------------------------------------------------------------------------
    def _encode(self, df: pd.DataFrame) -> np.ndarray:
        cols = []
        for name in self.numeric:
            if name in df.columns:
                v = pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                v = np.where(np.isfinite(v), v, self.fill[name])
            else:
                v = np.full(len(df), self.fill[name])
            cols.append(v)
        for name in self.categorical:
            freq = self.frequencies[name]
            if name in df.columns:
                s = df[name].astype(object).where(df[name].notna(), self.fill[name])
                # A category the reference never had gets frequency 0: far from every
                # reference row, which is what should show in the error.
                v = s.map(lambda c, freq=freq: freq.get(str(c), 0.0)).to_numpy(dtype=float)
            else:
                v = np.full(len(df), freq.get(str(self.fill[name]), 0.0))
            cols.append(v)
        x = np.column_stack(cols) if cols else np.empty((len(df), 0))
        return (x - self.mean) / self.scale

    def _errors(self, z: np.ndarray) -> np.ndarray:
        # Components are orthonormal: |z - z V V'|^2 = |z|^2 - |z V|^2.
        proj = z @ self.components.T
        sq = np.einsum("ij,ij->i", z, z) - np.einsum("ij,ij->i", proj, proj)
        return np.sqrt(np.maximum(sq, 0.0))

    # -- fit / detect --------------------------------------------------------------------------
    def fit(
        self, reference: pd.DataFrame, categorical: list[str] | None = None
    ) -> ReconstructionDrift:
        """Learn imputation, encoding, scaling, components and the alarm band."""
        if len(reference) < 100:
            raise ValueError("multivariate drift needs at least 100 reference rows")
        if categorical is None:
            categorical = [c for c in reference.columns if infer_kind(reference[c]) == CATEGORICAL]
        self.categorical = [str(c) for c in categorical]
        self.numeric = [str(c) for c in reference.columns if str(c) not in self.categorical]
        self.fill, self.frequencies = {}, {}
        for name in self.numeric:
            v = pd.to_numeric(reference[name], errors="coerce")
            v = v[np.isfinite(v)]
            self.fill[name] = float(v.mean()) if len(v) else 0.0
        for name in self.categorical:
            vc = reference[name].dropna().astype(str).value_counts(normalize=True)
            self.fill[name] = vc.index[0] if len(vc) else ""
            self.frequencies[name] = {str(k): float(v) for k, v in vc.items()}
        self.mean = np.zeros(len(self.numeric) + len(self.categorical))
        self.scale = np.ones_like(self.mean)
        x = self._encode(reference)
        self.mean = x.mean(axis=0)
        std = x.std(axis=0)
        self.scale = np.where(std > 0, std, 1.0)
        z = (x - self.mean) / self.scale
        # Fit the components on one half and set the band from the other: with weakly
        # correlated features the top components partly fit the sample's own noise, so
        # in-sample errors run low and every fresh window would look drifted.
        order = np.random.default_rng(self.seed).permutation(len(z))
        half = len(z) // 2
        rows = z[order[:half]][: self.max_fit_rows]
        _, s, vt = np.linalg.svd(rows - rows.mean(axis=0), full_matrices=False)
        explained = np.cumsum(s**2) / max(np.sum(s**2), 1e-300)
        k = int(np.searchsorted(explained, self.variance) + 1)
        self.components = vt[:k]
        errors = self._errors(z[order[half:]])
        chunk = self.chunk_size or int(min(max(len(errors) // 10, 50), 1000))
        if len(errors) < 2 * chunk:
            raise ValueError("chunk_size leaves fewer than 2 reference chunks")
        # Many random chunks rather than a handful of consecutive ones: errors are
        # heavy-tailed, and the spread of 10 chunk means understates the true spread.
        rng = np.random.default_rng(self.seed + 1)
        chunk_means = np.array(
            [
                errors[rng.choice(len(errors), chunk, replace=False)].mean()
                for _ in range(self.n_chunks)
            ]
        )
        self.chunk_size_ = chunk
        self.n_calibration_ = int(len(errors))
        self.reference_error = float(errors.mean())
        self.reference_sigma = float(chunk_means.std(ddof=1))
        self.fitted = True
        return self

    def bounds(self, n_rows: int) -> tuple[float, float]:
        """The alarm band for a window of ``n_rows`` rows.

        The spread of a window's mean error, plus the uncertainty of the reference mean
        itself (it is estimated too, and shared by every window).
        """
        per_row_var = self.reference_sigma**2 * self.chunk_size_
        sigma = math.sqrt(per_row_var * (1.0 / max(n_rows, 1) + 1.0 / self.n_calibration_))
        return (
            self.reference_error - self.n_sigma * sigma,
            self.reference_error + self.n_sigma * sigma,
        )

    def errors(self, current: pd.DataFrame) -> np.ndarray:
        """Each row's reconstruction error (their sum and count merge over partitions)."""
        if not self.fitted:
            raise RuntimeError("fit the detector on a reference first")
        return self._errors(self._encode(current))

    def score(self, current: pd.DataFrame) -> float:
        """Mean reconstruction error of the window."""
        return float(self.errors(current).mean())

    def detect(self, current: pd.DataFrame) -> dict:
        """``{"reconstruction_error", "lower", "upper", "drifted", "n_components"}``."""
        return self.judge(self.score(current), len(current))

    def judge(self, error: float, n_rows: int) -> dict:
        """`detect`'s answer for a window of `n_rows` whose mean error is `error`."""
        lower, upper = self.bounds(n_rows)
        return {
            "reconstruction_error": error,
            "reference_error": self.reference_error,
            "lower": lower,
            "upper": upper,
            "drifted": bool(error > upper or error < lower),
            "n_components": int(self.components.shape[0]),
        }

    # -- JSON ------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": 1,
            "variance": self.variance,
            "n_sigma": self.n_sigma,
            "numeric": self.numeric,
            "categorical": self.categorical,
            "fill": self.fill,
            "frequencies": self.frequencies,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "components": self.components.tolist(),
            "chunk_size": self.chunk_size_,
            "n_calibration": self.n_calibration_,
            "reference_error": self.reference_error,
            "reference_sigma": self.reference_sigma,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ReconstructionDrift:
        if d.get("format") != FORMAT:
            raise ValueError("not a modelwatch reconstruction drift detector")
        self = cls(variance=d["variance"], n_sigma=d["n_sigma"], chunk_size=d["chunk_size"])
        self.numeric, self.categorical = d["numeric"], d["categorical"]
        self.fill, self.frequencies = d["fill"], d["frequencies"]
        self.mean, self.scale = np.asarray(d["mean"]), np.asarray(d["scale"])
        self.components = np.asarray(d["components"]).reshape(-1, len(self.mean))
        self.chunk_size_ = int(d["chunk_size"])
        self.n_calibration_ = int(d["n_calibration"])
        self.reference_error, self.reference_sigma = d["reference_error"], d["reference_sigma"]
        self.fitted = True
        return self

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), allow_nan=False))
        return path

    @classmethod
    def load(cls, path: str | Path) -> ReconstructionDrift:
        return cls.from_dict(json.loads(Path(path).read_text()))
