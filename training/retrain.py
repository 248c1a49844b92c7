"""The `retrain` entry point: the champion's training data plus recent labelled traffic.

    python -m modelwatch.training.retrain --model-name credit-default --window 24h --trigger manual

Recent labelled predictions are split in two: most join the training data, and the rest
is the gate's holdout, so candidate and champion are judged on the traffic the model
serves now. All the reference rows are kept, but recent rows are weighted up until they
weigh as much in all: after concept drift the old rows teach the old concept, and after
covariate drift dropping them would only lose data. (On the simulator's covariate and
concept scenarios this beat both plain concatenation and a capped reference, by up to
0.04 ROC AUC on recent traffic.)

The gate also judges the candidate on a trusted holdout the feedback path never wrote
(`trusted_holdout`: a file the user gives, else the rows the champion's own gate judged
on, else its reference's labelled rows), and those rows are taken out of the training
data: a candidate must not train on its own judge. Labels are cast to the type the
champion answers (its signature's output), so a retrained classifier keeps the API;
recent labels that are not one of the champion's classes are left out, with a warning.

A champion modelwatch did not train is retrained on the rows of its onboarding reference
(the run in its tag `modelwatch.reference_run`) and its target (tag `modelwatch.target`).
Retraining never guesses a target: a version without one, or whose reference has no
labels, is refused as `Unsupported`, with what would make it possible.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from modelwatch.monitoring.registry import (
    TAG_SEGMENTS,
    TAG_SENSITIVE,
    TAG_TARGET,
    TAG_TASK,
    NotOnboarded,
    load_reference,
)
from modelwatch.training import data as data_module
from modelwatch.training import gate, simulator
from modelwatch.training.train import (
    TRUSTED_ARTIFACT,
    WEIGHT_COLUMN,
    TrainConfig,
    report,
    run,
)
from sklearn.model_selection import train_test_split

from modelwatch.log import label_text, open_store
from modelwatch.settings import default, read

RECENT_WEIGHT_SHARE = 0.5
DRIFT_REFERENCE_ROWS = 2_000
HOLDOUT_SHARE = 0.3
MIN_HOLDOUT_ROWS = 100
# The run tag of a modelwatch training run: its parameters describe the training data.
TRAINED_TAG = "modelwatch.model_name"


class Unsupported(Exception):
    """This version cannot be retrained; the message says why and what would allow it."""


@dataclass(frozen=True)
class Champion:
    version: str
    target: str
    task: str  # as tagged, or auto
    features: list[str]
    reference: (
        pd.DataFrame | None
    )  # its reference's labelled rows; None when its training data is at hand
    params: dict  # the training run's parameters; empty for a model trained elsewhere
    tags: dict
    run_id: str = ""
    label_type: str | None = None  # the type of the labels it answers (its signature's), if known


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        current = champion(MlflowClient(), args.model_name)
        recent = recent_frame(args.store_url, args.model_name, args.window, args.max_rows, current)
        trusted = trusted_holdout(MlflowClient(), args.model_name, current, args.holdout)
        learned, trusted = apart(learned_from(current), trusted, current, args.seed)
        kind = label_kind(current, learned)
        dataset, holdout = combine(current, learned, recent, args.seed, kind)
        trusted = _typed(trusted, current.target, kind, "trusted")
        trusted = data_module.prepare(
            trusted, current.target, "trusted holdout", dataset.task
        ).frame
        drift_reference = newest(recent, dataset)
    except Unsupported as exc:
        print(f"error: unsupported: {exc}", file=sys.stderr)
        return 2
    except (data_module.DataError, mlflow.exceptions.MlflowException, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"retraining {args.model_name} (champion version {current.version}, {dataset.task}) on "
        f"{len(dataset.frame)} rows, {len(recent)} of them recent; gate holdout "
        f"{'recent traffic' if holdout is not None else 'a split'} of "
        f"{len(holdout) if holdout is not None else 'the data'} rows, "
        f"and {len(trusted)} trusted rows"
    )
    outcome = run(dataset, config(current, args), holdout, drift_reference, trusted)
    report(outcome)
    return 0


def champion(client: MlflowClient, model_name: str) -> Champion:
    """The production version and what retraining it needs; Unsupported when it lacks any."""
    version = client.get_model_version_by_alias(model_name, gate.PRODUCTION)
    tags = version.tags or {}
    target = tags.get(TAG_TARGET)
    if not target:
        raise Unsupported(
            f"{model_name} version {version.version} has no target (version tag {TAG_TARGET}), "
            f"and retraining does not guess one: run `modelwatch onboard --model-name {model_name} "
            f"--version {version.version} --reference HELD_OUT.parquet --target COLUMN`"
        )
    run_info = client.get_run(version.run_id)
    params = run_info.data.params if TRAINED_TAG in run_info.data.tags else {}
    if _training_data_at_hand(params):
        features, rows = _features(params), None
    else:  # trained elsewhere, or its training data is gone: the reference has labelled rows
        features, rows = _reference_rows(client, model_name, version.version, target)
    return Champion(
        version.version,
        target,
        tags.get(TAG_TASK, "auto"),
        features,
        rows,
        params,
        tags,
        version.run_id,
        _label_type(model_name, version.version),
    )


def _label_type(model_name: str, version: str) -> str | None:
    """The numpy dtype of what the version answers, from its signature (int64, float64,
    bool or object for text); None without a signature of one column."""
    try:
        outputs = mlflow.models.get_model_info(f"models:/{model_name}/{version}").signature.outputs
        (kind,) = outputs.numpy_types()
    except Exception:  # no signature, or not one column: the training rows' type decides
        return None
    return "object" if kind.kind in "OUS" else "int64" if kind.kind in "iu" else np.dtype(kind).name


def trusted_holdout(
    client: MlflowClient, model_name: str, current: Champion, path: str = ""
) -> pd.DataFrame:
    """Labelled rows the feedback path never wrote, for the gate: the file at `path`, else
    the rows the champion's own gate judged on (train.TRUSTED_ARTIFACT), else the labelled
    rows of its monitoring reference (a champion from before that artifact, or onboarded)."""
    columns = current.features + [current.target]
    if path:
        rows = data_module.read_table(path)
        missing = sorted(set(columns) - set(rows.columns))
        if missing:
            raise data_module.DataError(f"holdout {path} lacks the columns {', '.join(missing)}")
        return rows[columns]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return pd.read_parquet(
                client.download_artifacts(current.run_id, TRUSTED_ARTIFACT, tmp)
            )[columns]
    except (mlflow.exceptions.MlflowException, OSError, KeyError):
        pass
    reference, _ = load_reference(client, model_name, current.version)
    return reference.sample.reindex(columns=columns).dropna(subset=[current.target])


def apart(learned: pd.DataFrame, trusted: pd.DataFrame, current: Champion, seed: int):
    """The rows to learn from and the trusted holdout, disjoint. Where the trusted rows are
    most of what the champion learned from (a model trained elsewhere: its reference is
    both), a share of them stays the holdout and the rest is learned from."""
    rest = without(learned, trusted, current)
    if len(rest) >= len(learned) / 2:
        return rest, trusted
    keep, trusted = train_test_split(trusted, test_size=HOLDOUT_SHARE, random_state=seed)
    return pd.concat([rest, keep], ignore_index=True), trusted


def without(learned: pd.DataFrame, trusted: pd.DataFrame, current: Champion) -> pd.DataFrame:
    """`learned` without the rows of `trusted` (a simulator's regenerated data holds the
    champion's holdout: the candidate must not train on the rows that judge it)."""
    columns = current.features + [current.target]
    if not set(columns) <= set(learned.columns):
        return learned
    keys = lambda frame: pd.util.hash_pandas_object(frame[columns].astype(str), index=False)  # noqa: E731
    return learned[~keys(learned).isin(set(keys(trusted)))].reset_index(drop=True)


def config(current: Champion, args: argparse.Namespace) -> TrainConfig:
    """The champion's own training settings where modelwatch trained it; the defaults else."""
    settings = {
        key: current.params[key] for key in ("model_type", "min_score") if key in current.params
    }
    if "tolerance" in current.params:
        settings["tolerance"] = float(current.params["tolerance"])
    return TrainConfig(
        args.model_name,
        seed=args.seed,
        promote=args.promote,
        trigger=args.trigger,
        segments=_tag_list(current.tags, TAG_SEGMENTS),
        sensitive=_tag_list(current.tags, TAG_SENSITIVE),
        **settings,
    )


def learned_from(current: Champion) -> pd.DataFrame:
    """The labelled rows the champion learned from: its training data, regenerated or
    re-read, or else the rows of its reference."""
    if current.reference is not None:
        return current.reference
    source, params = current.params["data_source"], current.params
    if source.startswith("simulator:"):
        return simulator.generate(
            int(params["rows_used"]), source.split(":", 1)[1], int(float(params["seed"]))
        )
    return data_module.read_table(source)


def _training_data_at_hand(params: dict) -> bool:
    """Whether a modelwatch training run's data can be had again (without reading it:
    the monitor asks this before every retraining)."""
    source = params.get("data_source", "")
    return source.startswith("simulator:") or (bool(source) and Path(source).is_file())


def _reference_rows(
    client, model_name: str, version: str, target: str
) -> tuple[list[str], pd.DataFrame]:
    """The features and labelled rows of the version's onboarding reference."""
    try:
        reference, _ = load_reference(client, model_name, version)
    except NotOnboarded as exc:
        raise Unsupported(str(exc)) from None
    labelled = reference.sample[target].notna().sum() if target in reference.sample else 0
    if labelled < data_module.MIN_ROWS:
        raise Unsupported(
            f"the reference of {model_name} version {version} has {labelled} rows labelled in "
            f"{target!r}; retraining needs {data_module.MIN_ROWS}: onboard it again with "
            f"--target {target} and a labelled reference"
        )
    return reference.features, reference.sample[reference.features + [target]]


def recent_frame(
    store_url: str, model_name: str, window: str, max_rows: int, current: Champion
) -> pd.DataFrame:
    """The model's labelled predictions of the last `window` (the newest `max_rows`), as
    feature columns plus the target."""
    target, features = current.target, current.features
    rows = open_store(store_url or None).read_window(
        model_name=model_name, since=window, limit=max_rows, labelled=True
    )
    missing = [c for c in features if c not in rows.columns]
    if len(rows) and missing:
        raise data_module.DataError(
            f"the prediction log lacks the model's features {', '.join(missing)}"
        )
    return rows.reindex(columns=features).assign(**{target: rows["label"].to_numpy()})


def label_kind(current: Champion, learned: pd.DataFrame) -> str:
    """The dtype of the champion's labels: what it answers, else what it learned from."""
    return current.label_type or str(learned[current.target].dtype)


def combine(
    current: Champion,
    learned: pd.DataFrame,
    recent: pd.DataFrame,
    seed: int,
    kind: str | None = None,
):
    """The training dataset, and the gate's holdout from recent rows (None if too few).
    Labels are cast to `kind` (default: the champion's, `label_kind`)."""
    target, task = current.target, current.task
    reference = learned.reindex(columns=current.features + [target])
    kind = kind or label_kind(current, reference)
    reference, recent = (
        _typed(reference, target, kind, "training"),
        _typed(recent, target, kind, "recent"),
    )
    if task == "auto" and len(reference):
        task = data_module.infer_task(reference[target])
    if task != "regression" and len(recent):
        known = recent[target].isin(set(reference[target].dropna()))
        if not known.all():
            print(
                f"warning: {int((~known).sum())} recent labels are none of the champion's classes "
                f"({', '.join(map(str, sorted(reference[target].dropna().unique(), key=str)))})"
                ": left out",
                file=sys.stderr,
            )
        recent = recent[known]
    holdout = None
    if len(recent) * HOLDOUT_SHARE >= MIN_HOLDOUT_ROWS:
        recent, holdout = train_test_split(recent, test_size=HOLDOUT_SHARE, random_state=seed)
    frame = pd.concat([reference, recent], ignore_index=True)
    dataset = data_module.prepare(
        frame, target, f"retrain: {len(reference)} reference + {len(recent)} recent rows", task
    )
    dataset.frame[WEIGHT_COLUMN] = _weights(len(reference), len(recent))[
        frame[target].notna().to_numpy()
    ]
    if holdout is not None:
        holdout = data_module.prepare(
            holdout.reset_index(drop=True), target, "recent holdout", dataset.task
        ).frame
    return dataset, holdout


def labels_as(labels: pd.Series, kind: str, what: str) -> pd.Series:
    """`labels` as the champion's type `kind` (a numpy dtype name), missing where a label
    is not of that type (with a warning: its row is left out): 1.0 is the class 1 of an
    integer target, and "1" of a text one.

    >>> labels_as(pd.Series([0.0, 1.0, None, 0.5]), "int64", "recent").tolist()
    [0.0, 1.0, nan, nan]
    >>> labels_as(pd.Series([1, 0]), "object", "recent").tolist()
    ['1', '0']
    """
    if kind == "object":
        return labels.map(label_text, na_action="ignore").astype(object)
    if kind == "bool":
        typed = labels.map(label_text, na_action="ignore").map({"1": True, "0": False})
    else:
        typed = pd.to_numeric(labels, errors="coerce")
        if kind.startswith("int"):
            typed = typed.where(typed % 1 == 0)
    bad = int((typed.isna() & labels.notna()).sum())
    if bad:
        print(
            f"warning: {bad} {what} labels are not of the champion's label type {kind}: left out",
            file=sys.stderr,
        )
    return typed


def _typed(frame: pd.DataFrame, target: str, kind: str, what: str) -> pd.DataFrame:
    """The rows of `frame` whose label is of type `kind`, with the label cast to it."""
    frame = frame.assign(**{target: labels_as(frame[target], kind, what)})
    return frame[frame[target].notna()].astype({target: kind})


def newest(recent: pd.DataFrame, dataset: data_module.Dataset) -> pd.DataFrame | None:
    """The drift reference of the new version: the newest traffic, which it was retrained
    for. Measured against the old reference, a market that has moved would look drifted
    forever, and retrain again after every cooldown."""
    if len(recent) < DRIFT_REFERENCE_ROWS // 2:
        return None  # too little: the training rows are the better reference
    rows = recent.tail(DRIFT_REFERENCE_ROWS).reset_index(drop=True)
    return data_module.prepare(rows, dataset.target, "recent traffic", dataset.task).frame


def _weights(n_reference: int, n_recent: int) -> np.ndarray:
    """1 for reference rows; recent rows up to RECENT_WEIGHT_SHARE of the total weight."""
    recent = 1.0
    if n_recent and n_reference > n_recent:
        recent = n_reference / n_recent * RECENT_WEIGHT_SHARE / (1 - RECENT_WEIGHT_SHARE)
    return np.r_[np.ones(n_reference), np.full(n_recent, recent)]


def _features(params: dict) -> list[str]:
    return [
        c
        for key in ("numeric_features", "categorical_features")
        for c in params.get(key, "").split(",")
        if c
    ]


def _tag_list(tags: dict, key: str) -> tuple[str, ...]:
    return tuple(c for c in tags.get(key, "").split(",") if c)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m modelwatch.training.retrain", description=__doc__.splitlines()[0]
    )
    p.add_argument("--model-name", default=read("MODELWATCH_MODEL_NAME"))
    p.add_argument(
        "--window",
        default=default("MODELWATCH_RETRAIN_WINDOW"),
        help="how far back recent traffic goes, e.g. 24h, 90m",
    )
    p.add_argument("--max-rows", type=lambda v: int(float(v)), default=50_000)
    p.add_argument(
        "--trigger", default="manual", help="why: the alert name and fingerprint, or manual"
    )
    p.add_argument("--promote", default="auto", help="auto, always or never")
    p.add_argument(
        "--store-url", default="", help="the prediction log (default MODELWATCH_STORE_URL)"
    )
    p.add_argument(
        "--holdout",
        default="",
        help="trusted labelled rows the gate scores on too "
        "(default: the champion's own trusted holdout)",
    )
    p.add_argument("--seed", type=lambda v: int(float(v)), default=42)
    return p


if __name__ == "__main__":
    sys.exit(main())
