"""`modelwatch monitor-batch` with the local engine: the window /status would show for the
same rows, logged to a real MLflow server, and exit 2 naming what is wrong with the input.
(The Spark engine's CLI run is in tests/monitoring/test_spark_engine.py, on its session.)"""

from __future__ import annotations

import copy
import json
import shutil

import pytest
import requests
from mlflow import MlflowClient
from modelwatch.monitoring.service.context import VersionContext
from modelwatch.monitoring.window import evaluate, window_status

from modelwatch.cli import main
from modelwatch.log import open_store
from modelwatch.log.lake import export_log
from tests import services
from tests.monitoring.batch_frames import assert_close, case, fill_store, register

MODEL = "batch-cli-test"


@pytest.fixture(scope="module")
def onboarded(mlflow_url, tmp_path_factory):
    """A version with a reference, one without, a store with the first's rows, its export."""
    reference, rows = case("credit", rows=3000, drift=True)
    version = register(mlflow_url, MODEL, reference)
    bare = register(mlflow_url, MODEL)
    root = tmp_path_factory.mktemp("batch-cli")
    store = open_store(f"sqlite:///{root / 'log.db'}")
    fill_store(store, rows, reference.features, MODEL, version)
    lake = str(root / "lake")
    export_log(store, lake)
    return {"url": mlflow_url, "version": version, "bare": bare, "store": store, "lake": lake}


@pytest.fixture(autouse=True)
def tracking(onboarded, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", onboarded["url"])


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["monitor-batch", "--model-name", MODEL, *args])
    out, err = capsys.readouterr()
    return code, out, err


def expected_status(onboarded) -> dict:
    """What the online monitor makes of the same rows, as /status shows them."""
    context = VersionContext.load(MlflowClient(onboarded["url"]), MODEL, onboarded["version"], 2000)
    window = onboarded["store"].read_window(model_version=onboarded["version"], model_name=MODEL)
    result = evaluate(
        onboarded["version"], copy.deepcopy(context.calculators), context.reference, window
    )
    return window_status(result, context.reference, context.estimates)


@pytest.mark.parametrize("source", ["lake", "store"])
def test_the_json_is_the_monitors_last_window(onboarded, capsys, source):
    log = onboarded["lake"] if source == "lake" else onboarded["store"].url
    code, out, err = run(
        capsys, "--log", log, "--version", onboarded["version"], "--engine", "local", "--json"
    )
    assert code == 0, err
    got = json.loads(out)
    batch = got.pop("batch")
    assert batch["engine"] == "local" and batch["left_out"] == []
    expected = expected_status(onboarded)
    got.pop("evaluated_at"), expected.pop("evaluated_at")
    assert_close(got, json.loads(json.dumps(expected, default=str)))
    assert got["drifted_features"] and got["rows"] == 1500


def test_the_window_is_logged_to_mlflow(onboarded, capsys):
    code, _, err = run(capsys, "--log", onboarded["lake"], "--version", onboarded["version"])
    assert code == 0, err
    client = MlflowClient(onboarded["url"])
    experiment = client.get_experiment_by_name(f"{MODEL}-monitoring")
    runs = client.search_runs(
        [experiment.experiment_id], f"tags.`modelwatch.batch_version` = '{onboarded['version']}'"
    )
    assert runs, "a run of the monitoring experiment"
    latest = runs[0]
    assert latest.data.metrics["window_rows"] == 1500
    assert latest.data.tags["modelwatch.batch_engine"] == "local"
    assert (
        "modelwatch.model_version" not in latest.data.tags
    )  # the online monitor's runs are its own


def test_a_range_selects_its_rows(onboarded, capsys):
    window = onboarded["store"].read_window(model_version=onboarded["version"], model_name=MODEL)
    middle = window["ts"].iloc[len(window) // 2].isoformat()
    code, out, err = run(
        capsys,
        "--log",
        onboarded["lake"],
        "--version",
        onboarded["version"],
        "--since",
        middle,
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["rows"] == int(
        (window["ts"] >= window["ts"].iloc[len(window) // 2]).sum()
    )


@pytest.mark.parametrize(
    "problem", ["no_path", "no_rows", "not_onboarded", "no_version", "bad_time"]
)
def test_bad_input_exits_2_naming_the_problem(onboarded, capsys, tmp_path, problem):
    args = {
        "no_path": ["--log", str(tmp_path / "nowhere"), "--version", onboarded["version"]],
        "no_rows": [
            "--log",
            onboarded["lake"],
            "--version",
            onboarded["version"],
            "--until",
            "2000-01-01T00:00Z",
        ],
        "not_onboarded": ["--log", onboarded["lake"], "--version", onboarded["bare"]],
        "no_version": ["--log", onboarded["lake"], "--version", "99"],
        "bad_time": [
            "--log",
            onboarded["lake"],
            "--version",
            onboarded["version"],
            "--since",
            "yesterday-ish",
        ],
    }
    code, out, err = run(capsys, *args[problem])
    assert code == 2 and out == ""
    assert {
        "no_path": "nowhere",
        "no_rows": "no predictions",
        "not_onboarded": "no monitoring reference",
        "no_version": "no version 99",
        "bad_time": "--since",
    }[problem] in err, err


@pytest.mark.skipif(
    shutil.which("prometheus-pushgateway") is None,
    reason="Prometheus' Pushgateway is installed by `make setup` as root",
)
def test_the_window_is_pushed_to_a_pushgateway(onboarded, capsys, tmp_path):
    """A real Pushgateway holds the window's series under the batch's grouping key."""
    port = services.free_port()
    with services.process(
        [
            "prometheus-pushgateway",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--persistence.file={tmp_path / 'pushgateway.db'}",
        ],
        tmp_path / "pushgateway.log",
    ) as proc:
        services.wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=60, proc=proc)
        code, _, err = run(
            capsys,
            "--log",
            onboarded["lake"],
            "--version",
            onboarded["version"],
            "--pushgateway",
            f"127.0.0.1:{port}",
        )
        assert code == 0, err
        held = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    grouping = f'job="modelwatch_monitor_batch",model_name="{MODEL}",model_version="{onboarded["version"]}"'
    rows = [
        line for line in held.splitlines() if line.startswith("modelwatch_monitor_window_rows{")
    ]
    assert rows and all(grouping.split(",")[0] in line for line in rows), rows
    assert any(line.endswith(" 1500") for line in rows), rows
    assert any(line.startswith("modelwatch_dataset_drift_share{") for line in held.splitlines())
