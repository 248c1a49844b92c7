"""Data integrity: is the current window *broken*, as opposed to *drifted*?

Drift means the world changed and the model may need retraining; an integrity issue
means the pipe feeding the model is broken (a form field left blank, two columns wired
the wrong way round, a string where a number belongs), and retraining on such data makes
things worse. ``check_integrity(profile, current)`` returns one dict per finding:

=================== ======================================================= ==========
kind                finding                                                 severity
=================== ======================================================= ==========
missing_column      a reference column is absent                            error
missing             the missing share rose well above the reference's       error
type_violation      values of the wrong type (text in a numeric column,     error
                    fractions in an integer column, numbers among strings)
swapped_columns     two columns each match the *other's* reference          error
                    distribution far better than their own
out_of_domain       values the column cannot take: outside its valid domain  error
                    (see below), in more than ``domain_tolerance`` of rows
unseen_category     categories the reference never had                      warning
unexpected_column   a column the reference does not have (only with         warning
                    ``unexpected_columns=True``: windows usually carry ids,
                    predictions and labels too)
=================== ======================================================= ==========

``warning`` findings are often legitimate (a launch in a new market brings a new region,
which is drift, and ``detect_drift`` reports it as such); ``error`` findings mean broken
data. A value past the reference's observed range is not one: incomes lower in a new market
are drift, and the drift calculator reports each column's share of them
(``drift_out_of_range_ratio``). Only a value outside the column's *valid domain* is
broken. The domain (:func:`valid_domain`) is inferred conservatively from the reference:
non-negative when no reference value is negative, at most 1 when the column looks like a
ratio or a probability (every value in [0, 1], fractions among them, and either spanning
[0.05, 0.95] or named like one: ratio, rate, share, prob...); a 0/1 flag is not a ratio.
An integer column (its dtype) takes no fractions (``type_violation``). A closed category
set, and any other bound, is the user's to declare: the profile's ``metadata["domain"]``,
``{column: {"min", "max", "integer", "categories"}}`` (:func:`declared_domain` checks
it), overrides what is inferred for the columns it names.

Each finding has ``kind``, ``columns``, ``severity``, ``share`` (of the window's rows
or values affected), ``count`` and ``message``, plus kind-specific details. Columns named
in a swap are not reported again as out of domain or mistyped: the swap explains them.

Every rule compares the window with what sampling alone would give (a one-sided test at
``alpha``) *and* with a practical tolerance, so a clean sample of the reference raises
nothing even in small windows.

>>> from modelwatch.training.simulator import generate
>>> from modelwatch.monitoring.drift import ReferenceProfile
>>> reference = generate(5000, "baseline", seed=1).drop(columns="defaulted")
>>> profile = ReferenceProfile.from_frame(reference)
>>> check_integrity(profile, generate(1000, "baseline", seed=2))
[]
>>> swapped = generate(1000, "integrity_swap", seed=2)
>>> [(i["kind"], i["columns"]) for i in check_integrity(profile, swapped)]
[('swapped_columns', ['age', 'debt_to_income'])]
>>> issue = check_integrity(profile, generate(1000, "integrity_missing", seed=2))[0]
>>> issue["kind"], issue["columns"], round(issue["share"], 2)
('missing', ['income'], 0.33)

References: Breck et al., "Data validation for machine learning", SysML 2019 (schema,
range and type checks against a reference; TFX Data Validation), and Schelter et al.,
"Automating large-scale data quality verification", VLDB 2018 (Deequ).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from modelwatch.monitoring.drift.profile import (
    CATEGORICAL,
    NUMERIC,
    ColumnProfile,
    ReferenceProfile,
    numeric_values,
)
from modelwatch.monitoring.drift.sketch import ColumnSketch, edges_of, fine_edges
from modelwatch.monitoring.drift.stattests import aligned_counts, ks
from scipy import stats

ERROR = "error"
WARNING = "warning"
LUMPED = "\x00values no category has"


def _binom_excess_p(count: int, n: int, p0: float) -> float:
    """P(X >= count) for X ~ Binomial(n, p0): how surprising `count` hits are by chance."""
    if count <= 0:
        return 1.0
    if p0 <= 0:
        return 0.0
    return float(stats.binom.sf(count - 1, n, min(p0, 1.0)))


def _issue(
    kind: str, columns: list[str], severity: str, share: float, count: int, message: str, **extra
) -> dict:
    return {
        "kind": kind,
        "columns": columns,
        "severity": severity,
        "share": float(share),
        "count": int(count),
        "message": message,
        **extra,
    }


def _type_of(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return "number"
    if isinstance(value, str):
        return "str"
    return type(value).__name__


class IntegrityChecker:
    """The rules and their tolerances; :func:`check_integrity` uses the defaults.

    ``alpha``: significance of the "more than chance" test behind every rule.
    ``missing_tolerance``: rise in missing share (absolute) that matters.
    ``domain_tolerance``: share of values outside the valid domain that matters (a
    stray glitch in a big window does not page).
    ``type_tolerance``: share of mistyped values that matters.
    ``unexpected_columns``: also report columns the reference does not have.
    ``swap_ratio``: a pair is swapped when each column fits the other's reference at
    least this many times better (KS distance) than its own.
    """

    def __init__(
        self,
        alpha: float = 0.001,
        missing_tolerance: float = 0.02,
        domain_tolerance: float = 0.001,
        type_tolerance: float = 0.01,
        unseen_tolerance: float = 0.0,
        swap_ratio: float = 2.0,
        unexpected_columns: bool = False,
    ):
        self.alpha = alpha
        self.missing_tolerance = missing_tolerance
        self.domain_tolerance = domain_tolerance
        self.type_tolerance = type_tolerance
        self.unseen_tolerance = unseen_tolerance
        self.swap_ratio = swap_ratio
        self.unexpected_columns = unexpected_columns

    # -- entry point ---------------------------------------------------------------------------
    def check(self, profile: ReferenceProfile | pd.DataFrame, current: pd.DataFrame) -> list[dict]:
        if not isinstance(profile, ReferenceProfile):
            profile = ReferenceProfile.from_frame(profile)
        return self.judge(profile, summarize(profile, current))

    def judge(self, profile: ReferenceProfile, summary: WindowSummary) -> list[dict]:
        """The findings of a window's summary (of the whole window, or merged from its parts)."""
        issues: list[dict] = []
        for name in profile.columns:
            if name not in summary.columns:
                issues.append(
                    _issue(
                        "missing_column",
                        [name],
                        ERROR,
                        1.0,
                        summary.n_rows,
                        f"column {name!r} is missing from the current data",
                    )
                )
        if summary.extra and self.unexpected_columns:
            issues.append(
                _issue(
                    "unexpected_column",
                    list(summary.extra),
                    WARNING,
                    0.0,
                    0,
                    f"columns not in the reference: {', '.join(summary.extra)}",
                )
            )
        if summary.n_rows == 0:
            return issues
        cur_profiles = {n: c.sketch.profile(n) for n, c in summary.columns.items()}
        swaps = self._swaps(profile, summary, cur_profiles)
        in_swap = {c for s in swaps for c in s["columns"]}
        issues.extend(swaps)
        for name, column in summary.columns.items():
            ref, cur = profile[name], cur_profiles[name]
            issues.extend(self._missing(ref, column.blank, summary.n_rows))
            if name in in_swap:
                continue
            issues.extend(self._types(ref, column))
            issues.extend(self._domain(ref, column, summary.domains[name]))
            if ref.kind == CATEGORICAL and summary.domains[name].categories is None:
                issues.extend(self._unseen(ref, cur))
        return issues

    # -- rules ---------------------------------------------------------------------------------
    def _missing(self, ref: ColumnProfile, count: int, m: int) -> list[dict]:
        share = count / m
        base = ref.missing_share
        if share - base <= self.missing_tolerance:
            return []
        # Reference missing share is itself an estimate; smooth it so a reference
        # without any blanks does not make a single blank "impossible".
        p0 = max(base, 0.5 / (ref.n_rows + 1))
        if _binom_excess_p(count, m, p0) >= self.alpha:
            return []
        return [
            _issue(
                "missing",
                [ref.name],
                ERROR,
                share,
                count,
                f"{ref.name!r} is missing in {share:.1%} of rows (reference: {base:.1%})",
                reference_share=base,
            )
        ]

    def _types(self, ref: ColumnProfile, column: ColumnSummary) -> list[dict]:
        if not column.present:
            return []
        share = column.bad / column.present
        if share <= self.type_tolerance:
            return []
        return [
            _issue(
                "type_violation",
                [ref.name],
                ERROR,
                share,
                column.bad,
                f"{share:.1%} of {ref.name!r} values are not {column.expected}",
                expected=column.expected,
                examples=list(column.examples),
            )
        ]

    def _domain(self, ref: ColumnProfile, column: ColumnSummary, domain: Domain) -> list[dict]:
        if not column.present or column.invalid <= self.domain_tolerance * column.present:
            return []
        share = column.invalid / column.present
        return [
            _issue(
                "out_of_domain",
                [ref.name],
                ERROR,
                share,
                column.invalid,
                f"{share:.1%} of {ref.name!r} values are outside its valid domain "
                f"{domain.describe()}",
                domain=domain.to_dict(),
                examples=list(column.invalid_examples),
            )
        ]

    def _unseen(self, ref: ColumnProfile, cur: ColumnProfile) -> list[dict]:
        if cur.n == 0:
            return []
        known = ref.category_index()
        mask = np.array([v not in known for v in cur.values.tolist()], dtype=bool)
        count = int(cur.counts[mask].sum())
        share = count / cur.n
        if count == 0 or share <= self.unseen_tolerance:
            return []
        # A category rarer than 1 / n_ref could be missing from the reference by chance.
        if _binom_excess_p(count, cur.n, 1.0 / (ref.n + 1)) >= self.alpha:
            return []
        new = [str(v) for v in cur.values[mask].tolist()[:10]]
        return [
            _issue(
                "unseen_category",
                [ref.name],
                WARNING,
                share,
                count,
                f"{share:.1%} of {ref.name!r} values are categories the reference never had: "
                f"{', '.join(new)}",
                categories=new,
            )
        ]

    def _swaps(
        self, profile: ReferenceProfile, summary: WindowSummary, cur: dict[str, ColumnProfile]
    ) -> list[dict]:
        """Pairs whose values each look like the other's reference and not like their own.

        Distances are KS distances (scale-free, in [0, 1]) for numeric columns and total
        variation distances for categorical ones. Only columns that do not fit their own
        reference are candidates, which keeps the pairwise search small. A numeric and a
        categorical column swapped show as text where numbers belong and the reverse;
        each is re-read as the other's kind and compared the same way.
        """

        def misfit(ref: ColumnProfile, c: ColumnProfile, present: int) -> float:
            if ref.n == 0:
                return 0.0  # nothing to compare against
            if c.n == 0:
                # Values present but none readable as this kind: as far off as it gets.
                # All missing is the missing rule's business, not a swap.
                return 1.0 if present else 0.0
            if ref.kind == NUMERIC:
                return ks(ref, c)[0]
            return _tvd(ref, c)

        def noise(ref: ColumnProfile, c: ColumnProfile) -> float:
            # KS critical distance at alpha: how far two samples of one distribution
            # may lie apart by chance.
            n, m = max(ref.n, 1), max(c.n, 1)
            return math.sqrt(-0.5 * math.log(self.alpha / 2)) * math.sqrt((n + m) / (n * m))

        columns = summary.columns
        candidates = []
        for name, c in cur.items():
            ref = profile[name]
            own = misfit(ref, c, columns[name].present)
            if own > max(noise(ref, c), 0.1) or (own == 1.0 and c.n == 0):
                candidates.append((name, own))
        found, used = [], set()
        for (a, own_a), (b, own_b) in itertools.combinations(candidates, 2):
            if a in used or b in used:
                continue
            ra, rb = profile[a], profile[b]
            # Read each column as if it were the other one (same kind: the same reading).
            ca = cur[a] if ra.kind == rb.kind else columns[a].other.profile(a)
            cb = cur[b] if ra.kind == rb.kind else columns[b].other.profile(b)
            cross = max(misfit(rb, ca, columns[a].present), misfit(ra, cb, columns[b].present))
            if cross * self.swap_ratio < min(own_a, own_b):
                used.update((a, b))
                found.append(
                    _issue(
                        "swapped_columns",
                        sorted([a, b], key=list(profile.columns).index),
                        ERROR,
                        1.0,
                        summary.n_rows,
                        f"{a!r} and {b!r} look swapped: each matches the other's reference "
                        f"(distance {cross:.3f}) far better than its own ({min(own_a, own_b):.3f})",
                        own_distance=min(own_a, own_b),
                        swapped_distance=cross,
                    )
                )
        return found


# -- the window as the rules read it: mergeable ---------------------------------------------------
@dataclass
class ColumnSummary:
    """What the rules read of one window column. Two partitions' summaries merge into the
    summary of their rows; the rules then judge it as if it were one window (see
    `modelwatch.monitoring.drift.sketch` for what a big numeric column costs)."""

    sketch: ColumnSketch  # read as its reference kind
    other: ColumnSketch | None  # read as the other kind (a swap across kinds shows so)
    blank: int  # true blanks, and infinities in a numeric column
    present: int  # values not missing
    bad: int  # of them, of the wrong type
    examples: tuple  # up to 5 of those
    expected: str
    invalid: int = 0  # values outside the column's valid domain
    invalid_examples: tuple = ()  # up to 5 of those
    isna: int = 0  # what pandas calls missing (the missing-ratio metric)

    def merge(self, other: ColumnSummary) -> ColumnSummary:
        examples = tuple(dict.fromkeys(self.examples + other.examples))[:5]
        invalid = tuple(dict.fromkeys(self.invalid_examples + other.invalid_examples))[:5]
        return ColumnSummary(
            self.sketch.merge(other.sketch),
            self.other and self.other.merge(other.other),
            self.blank + other.blank,
            self.present + other.present,
            self.bad + other.bad,
            examples,
            self.expected,
            self.invalid + other.invalid,
            invalid,
            self.isna + other.isna,
        )


@dataclass
class WindowSummary:
    n_rows: int
    columns: dict  # name -> ColumnSummary, the reference columns the window has
    extra: tuple = ()  # columns the reference does not have
    domains: dict = field(default_factory=dict)  # name -> the Domain it was judged against

    def merge(self, other: WindowSummary) -> WindowSummary:
        # A column absent from one partition counts as missing there only if it is
        # absent from the other too: the calculators reindex, so this does not arise.
        columns = {
            n: self.columns[n].merge(other.columns[n]) if n in other.columns else self.columns[n]
            for n in self.columns
        }
        columns |= {n: c for n, c in other.columns.items() if n not in columns}
        return WindowSummary(
            self.n_rows + other.n_rows,
            columns,
            tuple(dict.fromkeys(self.extra + other.extra)),
            self.domains | other.domains,
        )


def summarize(profile: ReferenceProfile, current: pd.DataFrame) -> WindowSummary:
    """The window's summary against the profile: what `IntegrityChecker.judge` reads."""
    if not all(isinstance(c, str) for c in current.columns):
        current = current.rename(columns=str)  # profiles name columns as strings
    mixed = len(profile.numeric_columns) and len(profile.categorical_columns)
    readings = (_pooled_edges(profile), _categories(profile)) if mixed else None
    domains = valid_domains(profile)
    columns = {
        name: _summarize_column(profile[name], current[name], readings, domains[name])
        for name in profile.columns
        if name in current.columns
    }
    extra = tuple(str(c) for c in current.columns if str(c) not in profile.columns)
    return WindowSummary(len(current), columns, extra, domains)


def _pooled_edges(profile: ReferenceProfile) -> np.ndarray:
    """Edges for a categorical column read as numbers (it may hold any numeric column's values)."""
    edges = [edges_of(profile[n]) for n in profile.numeric_columns]
    return fine_edges(np.unique(np.concatenate(edges))) if edges else np.array([0.0])


def _categories(profile: ReferenceProfile) -> set:
    return {v for n in profile.categorical_columns for v in profile[n].values.tolist()}


def _summarize_column(
    ref: ColumnProfile, series: pd.Series, readings: tuple | None, domain: Domain
) -> ColumnSummary:
    series = series.rename(ref.name)
    numeric = ref.kind == NUMERIC
    sketch = ColumnSketch.of(series, ref.kind, edges_of(ref))
    other = None
    if readings is not None:
        pooled, categories = readings
        if numeric:
            # Read as categories, a number no categorical reference has is compared only by
            # its count (the total variation distance adds those up): one bucket holds them.
            lumped = series.astype(object).where(series.isna() | series.isin(categories), LUMPED)
            other = ColumnSketch.of(lumped, CATEGORICAL, None)
        else:
            other = ColumnSketch.of(series, NUMERIC, pooled)
    present = series[series.notna()]
    bad, expected = _mistyped(ref, present, domain)
    examples = tuple(str(v) for v in present[bad].unique()[:5].tolist()) if bad.any() else ()
    outside = domain.outside(present[~bad], numeric)
    invalid = tuple(str(v) for v in present[~bad][outside].unique()[:5].tolist())
    return ColumnSummary(
        sketch,
        other,
        _blanks(ref, series),
        len(present),
        int(bad.sum()),
        examples,
        expected,
        int(outside.sum()),
        invalid,
        len(series) - len(present),
    )


def _example(present: pd.Series, types: list, wanted: type):
    return present.iloc[types.index(wanted)]


def _blanks(ref: ColumnProfile, series: pd.Series) -> int:
    # A value that is not a number (text in a numeric column) is a type violation, not a
    # missing value; count only true blanks and infinities.
    blank = series.isna().to_numpy()
    if ref.kind == NUMERIC and pd.api.types.is_numeric_dtype(series.dtype):
        blank = ~np.isfinite(series.to_numpy(dtype=np.float64, na_value=np.nan))
    return int(blank.sum())


def _mistyped(ref: ColumnProfile, present: pd.Series, domain: Domain) -> tuple[np.ndarray, str]:
    """Which present values have the wrong type, and what was expected."""
    if present.empty:
        return np.zeros(0, dtype=bool), ""
    if ref.kind == NUMERIC:
        expected = "a number"
        if pd.api.types.is_bool_dtype(present.dtype):
            bad = np.ones(len(present), dtype=bool)
        elif pd.api.types.is_numeric_dtype(present.dtype):
            bad = np.zeros(len(present), dtype=bool)
        else:
            bad = np.isnan(
                pd.to_numeric(present, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            )
        if not bad.any() and (ref.is_integer or domain.integer):
            vals = numeric_values(present)
            bad = np.isfinite(vals) & (vals != np.round(vals))
            expected = "an integer"
        return bad, expected
    ref_types = {_type_of(v) for v in ref.values.tolist()}
    expected = " or ".join(sorted(ref_types))
    if pd.api.types.is_object_dtype(present.dtype) or isinstance(
        present.dtype, pd.CategoricalDtype
    ):
        # each row's Python type, then each distinct type judged once (pandas' map per row is slow)
        types = [type(v) for v in present.to_numpy(dtype=object)]
        wrong = {t: _type_of(_example(present, types, t)) not in ref_types for t in set(types)}
        return np.fromiter((wrong[t] for t in types), dtype=bool, count=len(types)), expected
    return np.full(len(present), _type_of(present.iloc[0]) not in ref_types), expected


def _tvd(ref: ColumnProfile, cur: ColumnProfile) -> float:
    """Total variation distance between two category distributions."""
    r, c = aligned_counts(ref, cur)
    return float(0.5 * np.abs(r / r.sum() - c / c.sum()).sum())


def check_integrity(
    profile: ReferenceProfile | pd.DataFrame, current: pd.DataFrame, **options
) -> list[dict]:
    """Integrity findings of ``current`` against the reference (a profile or a frame).

    ``options`` go to :class:`IntegrityChecker` (alpha and tolerances). Returns a list of
    dicts, errors first; empty when nothing is wrong.
    """
    issues = IntegrityChecker(**options).check(profile, current)
    return sorted(issues, key=lambda i: i["severity"] != ERROR)


# -- the valid domain -------------------------------------------------------------------------
DOMAIN_KEYS = ("min", "max", "integer", "categories")
MIN_DOMAIN_VALUES = 100  # fewer reference values infer no domain: too little to be sure
RATIO_NAME = re.compile(r"ratio|rate|share|prob|pct|percent|fraction|proportion", re.I)


@dataclass(frozen=True)
class Domain:
    """The values a column can take at all; outside it a value is broken, not drifted."""

    min: float | None = None
    max: float | None = None
    integer: bool = False
    categories: frozenset | None = None  # a closed set, only where the user declared one
    declared: bool = False  # the user's, not inferred

    def outside(self, present: pd.Series, numeric: bool) -> np.ndarray:
        """Which of the present (well-typed) values lie outside the domain."""
        if not numeric:
            if self.categories is None:
                return np.zeros(len(present), dtype=bool)
            return ~present.isin(self.categories).to_numpy()
        values = numeric_values(present)
        low = values < self.min if self.min is not None else False
        high = values > self.max if self.max is not None else False
        return np.asarray(low | high, dtype=bool) & np.isfinite(values)

    def describe(self) -> str:
        if self.categories is not None:
            return "{" + ", ".join(sorted(map(str, self.categories))) + "}"
        low = "-inf" if self.min is None else f"{self.min:g}"
        high = "inf" if self.max is None else f"{self.max:g}"
        source = "declared" if self.declared else "inferred from the reference"
        return f"[{low}, {high}] ({source})"

    def to_dict(self) -> dict:
        found = {"min": self.min, "max": self.max, "integer": self.integer}
        if self.categories is not None:
            found["categories"] = sorted(self.categories, key=str)
        return found | {"declared": self.declared}


def valid_domain(ref: ColumnProfile, declared: dict | None = None) -> Domain:
    """The column's domain: what the user declared, else what the reference shows
    conservatively (sign, and [0, 1] for a ratio; see the module's doc)."""
    if declared:
        categories = declared.get("categories")
        return Domain(
            declared.get("min"),
            declared.get("max"),
            bool(declared.get("integer", False)),
            frozenset(categories) if categories is not None else None,
            declared=True,
        )
    if ref.kind != NUMERIC or ref.n < MIN_DOMAIN_VALUES:
        return Domain()
    low, high = ref.min, ref.max
    fractions = bool(np.any(ref.values != np.round(ref.values)))
    ratio = (
        low >= 0
        and high <= 1
        and fractions
        and ((low <= 0.05 and high >= 0.95) or bool(RATIO_NAME.search(ref.name)))
    )
    return Domain(0.0 if low >= 0 else None, 1.0 if ratio else None)


def valid_domains(profile: ReferenceProfile) -> dict[str, Domain]:
    """Every column's domain, the declared ones (`metadata["domain"]`) first."""
    declared = profile.metadata.get("domain") or {}
    return {
        name: ref.cached("domain", lambda ref=ref, name=name: valid_domain(ref, declared.get(name)))
        for name, ref in profile.columns.items()
    }


def declared_domain(doc: dict, columns: list[str]) -> dict:
    """A user's domain declaration, checked: {column: {"min", "max", "integer",
    "categories"}} for columns of the reference. Raises ValueError naming the problem."""
    if not isinstance(doc, dict):
        raise ValueError("a domain is a JSON object of column -> {min, max, integer, categories}")
    for name, spec in doc.items():
        if name not in columns:
            raise ValueError(f"domain: {name!r} is not a column of the reference")
        if not isinstance(spec, dict) or set(spec) - set(DOMAIN_KEYS):
            raise ValueError(f"domain of {name!r}: an object of {', '.join(DOMAIN_KEYS)}")
        for key in ("min", "max"):
            if spec.get(key) is not None and not isinstance(spec[key], (int, float)):
                raise ValueError(f"domain of {name!r}: {key} must be a number")
        if spec.get("categories") is not None and not isinstance(spec["categories"], list):
            raise ValueError(f"domain of {name!r}: categories must be a list")
    return doc
