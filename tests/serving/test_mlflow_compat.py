"""modelwatch against `mlflow models serve`, on the same registered models, request for
request: the MLflow-compatible surface (/ping, /health, /version, /invocations) must
answer as MLflow does.

Built from MLflow's own scoring-server tests, `tests/pyfunc/test_scoring_server.py` in
mlflow/mlflow (the copy read: commit 02531f8d12b83e392fb1a3b95f7a91ac694a08be), with the
server behaviour of the MLflow pinned here, 3.17.2 (`mlflow/pyfunc/scoring_server/
__init__.py`), and the request shapes issue 12 found apart. Each case names the MLflow
test it comes from. Both servers are started by this module: `mlflow models serve
--env-manager local` and modelwatch's gunicorn, on a scikit-learn model and on a pyfunc
(tests/serving/compat_pyfunc.py) whose `params` pick the type it answers. After an MLflow
upgrade, the cases that fail show where the protocol moved.

Compared: the status, the media type, MLflow's `error_code`, and `predictions` (or the
whole body of /ping and /version). Not compared: error messages (MLflow's name its
internals and change between releases), the extra keys modelwatch may add beside
`predictions` (`warnings`, `fallback`), and the body of /health (MLflow's is "\\n",
modelwatch's its JSON; probes read the status).

Where modelwatch answers otherwise on purpose, the case says why and both answers are
checked, so that a change on either side shows (`DELIBERATE`)."""

from __future__ import annotations

import io
import json
import os
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from modelwatch.training.simulator import FEATURES, generate

from tests import services
from tests.serving import modelkit
from tests.serving.conftest import gunicorn

pytestmark = pytest.mark.slow
SKLEARN, PYFUNC = "compat-sklearn", "compat-pyfunc"
JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
ROWS = modelkit.feature_rows(3)
FRAME = pd.DataFrame(ROWS)
SPLIT = {"dataframe_split": FRAME.to_dict(orient="split")}


def dumps(body) -> str:
    # MLflow's own encoder (what its clients send): NaN literals for missing values.
    from mlflow.utils.proto_json_utils import NumpyEncoder

    return json.dumps(body, cls=NumpyEncoder)


def rows_with(**changes) -> list[dict]:
    """ROWS with the first row's values changed (a value of None drops the column)."""
    first = {k: v for k, v in {**ROWS[0], **changes}.items() if changes.get(k, 0) is not None}
    return [first] + ROWS[1:]


def parquet(df: pd.DataFrame) -> bytes:
    out = io.BytesIO()
    df.to_parquet(out)
    return out.getvalue()


@dataclass(frozen=True)
class Case:
    id: str
    source: str  # the MLflow test (test_scoring_server.py) or issue 12
    body: str | bytes | None = None
    content_type: str | None = JSON
    model: str = SKLEARN
    method: str = "POST"
    path: str = "/invocations"


RECORDS = dumps({"dataframe_records": ROWS})
CASES = [
    Case(
        "ping",
        "test_scoring_server_client (wait_server_ready)",
        method="GET",
        path="/ping",
        content_type=None,
    ),
    Case(
        "health",
        "scoring_server.init: /health is /ping",
        method="GET",
        path="/health",
        content_type=None,
    ),
    Case(
        "version",
        "test_scoring_server_client (get_version)",
        method="GET",
        path="/version",
        content_type=None,
    ),
    Case(
        "malformed json",
        "..._responds_to_malformed_json_input_with_error_code_and_message",
        "this is,,,, not valid json",
    ),
    *[
        Case(
            f"json {name}",
            "..._responds_to_invalid_json_format_with_error_code_and_message",
            json.dumps(value),
        )
        for name, value in [("number", 1), ("string", "1"), ("list", [1])]
    ],
    Case(
        "no format key",
        "..._responds_to_invalid_json_format_with_error_code_and_message",
        dumps({"not": "a serialized dataframe"}),
    ),
    Case(
        "two format keys",
        "..._responds_to_invalid_json_format_with_error_code_and_message",
        dumps({"dataframe_records": [], "dataframe_split": {"data": []}}),
    ),
    Case(
        "dataframe_split as records",
        "..._responds_to_invalid_pandas_input_format_with_stacktrace_and_error_code",
        dumps({"dataframe_split": ROWS}),
    ),
    Case(
        "dataframe_records as split",
        "..._responds_to_invalid_pandas_input_format_with_stacktrace_and_error_code",
        dumps({"dataframe_records": FRAME.to_dict(orient="split")}),
    ),
    Case(
        "split, index of another length",
        "..._responds_to_invalid_dataframe_with_stacktrace_and_error_code",
        dumps({"dataframe_split": {"index": [1, 2], "data": [[1], [2], [3]]}}),
    ),
    Case(
        "frame of other columns",
        "..._responds_to_incompatible_inference_dataframe_with_stacktrace_and_error_code",
        dumps({"dataframe_split": pd.DataFrame(np.arange(10)).to_dict(orient="split")}),
    ),
    Case("empty csv", "..._responds_to_invalid_csv_input_with_stacktrace_and_error_code", "", CSV),
    Case(
        "dataframe_records",
        "..._evaluates_correct_dataframes_with_pandas_records_orientation",
        RECORDS,
    ),
    Case(
        "records, charset=UTF-8",
        "..._evaluates_correct_dataframes_with_pandas_records_orientation",
        RECORDS,
        JSON + "; charset=UTF-8",
    ),
    Case(
        "dataframe_split",
        "..._evaluates_correct_dataframes_with_pandas_split_orientation",
        dumps(SPLIT),
    ),
    Case(
        "split, charset=UTF-8",
        "..._evaluates_correct_dataframes_with_pandas_split_orientation",
        dumps(SPLIT),
        JSON + "; charset=UTF-8",
    ),
    Case(
        "unsupported content type",
        "..._responds_to_invalid_content_type_request_with_unsupported_content_type_code",
        FRAME.to_json(orient="split"),
        "not_a_supported_content_type",
    ),
    Case(
        "unknown content type parameter",
        "..._responds_to_invalid_content_type_request_with_unrecognized_content_param",
        FRAME.to_json(orient="split"),
        JSON + "; something=something",
    ),
    Case(
        "instances as rows of values",
        "..._successfully_evaluates_correct_tf_serving_sklearn",
        dumps({"instances": FRAME.to_numpy().tolist()}),
    ),
    Case(
        "instances as records",
        "..._evaluates_correct_tf_serving_keras_instances",
        dumps({"instances": ROWS}),
    ),
    Case(
        "inputs as columns",
        "..._evaluates_correct_tf_serving_keras_inputs",
        dumps({"inputs": FRAME.to_dict(orient="list")}),
    ),
    Case(
        "inputs as records",
        "test_serving_model_with_schema ('inputs' format)",
        dumps({"inputs": ROWS}),
    ),
    Case("inputs as one row", "issue 12", dumps({"inputs": ROWS[0]})),
    Case("csv", "test_parse_with_schema_csv", FRAME.to_csv(index=False), CSV),
    Case(
        "csv, charset=utf-8",
        "test_parse_with_schema_csv",
        FRAME.to_csv(index=False),
        CSV + "; charset=utf-8",
    ),
    Case("csv, header only", "issue 12", ",".join(FEATURES) + "\n", CSV),
    Case("parquet", "scoring_server: CONTENT_TYPE_PARQUET", parquet(FRAME), PARQUET),
    Case("not parquet", "scoring_server: parse_parquet_input", b"not parquet", PARQUET),
    Case("application/x-parquet", "issue 12", parquet(FRAME), "application/x-parquet"),
    Case("format= (MLflow 1.x)", "issue 12", dumps(SPLIT), JSON + "; format=pandas-split"),
    Case("charset=latin-1", "issue 12", dumps(SPLIT), JSON + "; charset=latin-1"),
    Case("no content type", "issue 12", dumps(SPLIT), None),
    Case(
        "split without columns",
        "issue 12",
        dumps({"dataframe_split": {"data": SPLIT["dataframe_split"]["data"]}}),
    ),
    Case(
        "NaN literals",
        "issue 12",
        dumps({"dataframe_records": rows_with(income=float("nan"), region=float("nan"))}),
    ),
    Case(
        "NaN literals in a split",
        "issue 12",
        dumps(
            {
                "dataframe_split": pd.DataFrame(rows_with(income=float("nan"))).to_dict(
                    orient="split"
                )
            }
        ),
    ),
    Case(
        "nulls",
        "issue 12",
        json.dumps({"dataframe_records": [{**ROWS[0], "income": None, "region": None}] + ROWS[1:]}),
    ),
    Case(
        "Infinity literal", "issue 12", dumps({"dataframe_records": rows_with(income=float("inf"))})
    ),
    Case(
        "a column missing",
        "issue 12",
        dumps({"dataframe_records": [{k: v for k, v in r.items() if k != "income"} for r in ROWS]}),
    ),
    Case(
        "a column missing in one record",
        "issue 12",
        dumps({"dataframe_records": rows_with(income=None)}),
    ),
    Case(
        "an extra column",
        "issue 12",
        dumps({"dataframe_records": [dict(r, extra=1) for r in ROWS]}),
    ),
    Case(
        "text in a number column",
        "issue 12",
        dumps({"dataframe_records": rows_with(income="lots")}),
    ),
    Case(
        "a boolean in a number column",
        "issue 12",
        dumps({"dataframe_records": rows_with(income=True)}),
    ),
    Case(
        "a number in a text column", "issue 12", dumps({"dataframe_records": rows_with(region=3)})
    ),
    Case(
        "a fraction in an integer column",
        "issue 12",
        dumps({"dataframe_records": rows_with(age=30.5)}),
    ),
    Case("no records", "issue 12", dumps({"dataframe_records": []})),
    Case(
        "split of columns, no rows",
        "issue 12",
        dumps({"dataframe_split": {"columns": FEATURES, "data": []}}),
    ),
    Case("bytes that are not UTF-8", "issue 12", b'{"dataframe_records": [{"region": "\xff"}]}'),
    Case(
        "params, no params schema",
        "test_serving_model_with_param_schema",
        dumps({**SPLIT, "params": {"threshold": 0.1}}),
    ),
    Case("GET /invocations", "issue 12", method="GET", content_type=None),
    *[
        Case(
            f"pyfunc answers a {output}",
            "issue 12 (every pyfunc output type)",
            dumps({**SPLIT, "params": {"output": output}}),
            model=PYFUNC,
        )
        for output in ("frame", "series", "array", "list", "dict", "scalar")
    ],
    Case(
        "pyfunc params reach predict",
        "test_serving_model_with_param_schema",
        dumps({**SPLIT, "params": {"threshold": 0.0, "output": "list"}}),
        model=PYFUNC,
    ),
    Case(
        "pyfunc param of the wrong type",
        "test_serving_model_with_param_schema",
        dumps({**SPLIT, "params": {"threshold": "abc"}}),
        model=PYFUNC,
    ),
    Case(
        "pyfunc param not in its schema",
        "test_serving_model_with_param_schema",
        dumps({**SPLIT, "params": {"not_a_param": 1}}),
        model=PYFUNC,
    ),
    Case("pyfunc params not an object", "issue 12", dumps({**SPLIT, "params": [1]}), model=PYFUNC),
    Case(
        "pyfunc fails", "issue 12", dumps({**SPLIT, "params": {"output": "unknown"}}), model=PYFUNC
    ),
    Case("pyfunc, csv (no params)", "issue 12", FRAME.to_csv(index=False), CSV, model=PYFUNC),
]

# Case -> why modelwatch answers otherwise, and (MLflow's status, modelwatch's status,
# modelwatch's error_code).
DELIBERATE = {
    "health": (
        "modelwatch's /health answers its JSON status (MLflow's body is \"\\n\"); "
        "the status is the same",
        (200, 200, None),
    ),
    "no content type": (
        "MLflow fails on a request without a Content-Type (an "
        "AttributeError, a 500); modelwatch answers 415 as for any type it "
        "does not read",
        (500, 415, None),
    ),
    "a column missing in one record": (
        "a record without a required column would be a 400 alone, so it is one in a batch "
        "too: MLflow fills it with NaN and scores it on the model's imputation",
        (200, 400, "INVALID_PARAMETER_VALUE"),
    ),
    "a boolean in a number column": (
        "MLflow converts true to 1.0; modelwatch refuses a value of the wrong type rather "
        "than score a guess",
        (200, 400, "BAD_REQUEST"),
    ),
    "a number in a text column": (
        "MLflow converts 3 to \"3\"; modelwatch refuses a value of the wrong type rather "
        "than score a guess",
        (200, 400, "BAD_REQUEST"),
    ),
    "GET /invocations": (
        "both 405; the body is modelwatch's JSON error (MLflow's is "
        "FastAPI's {\"detail\"}), there is no error_code",
        (405, 405, None),
    ),
}


@dataclass(frozen=True)
class Answer:
    status: int
    media_type: str
    error_code: str | None
    body: object  # predictions, or the text of /ping and /version

    @classmethod
    def of(cls, response: requests.Response, path: str) -> Answer:
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        doc = None
        if media_type == JSON and path == "/invocations":
            doc = response.json()
        if not response.ok or path != "/invocations":
            code = doc.get("error_code") if isinstance(doc, dict) else None
            body = response.text if path in ("/ping", "/version") else None
            return cls(response.status_code, media_type, code, body)
        return cls(response.status_code, media_type, None, doc["predictions"])

    def row(self) -> str:
        return f"{self.status} {self.error_code or ''}".strip()


def register_pyfunc(url: str) -> None:
    """compat_pyfunc.py as `PYFUNC`, alias production, with a params schema."""
    import mlflow.pyfunc
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    X = generate(50, seed=1)[FEATURES]
    signature = infer_signature(X, None, params={"threshold": 0.5, "output": "frame"})
    exp = client.get_experiment_by_name("serving-tests")
    run = client.create_run(exp.experiment_id if exp else client.create_experiment("serving-tests"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model"
        mlflow.pyfunc.save_model(
            str(path),
            signature=signature,
            input_example=X.head(3),
            python_model=str(Path(__file__).with_name("compat_pyfunc.py")),
            pip_requirements=["pandas"],
        )
        client.log_artifacts(run.info.run_id, str(path), "model")
    client.set_terminated(run.info.run_id)
    client.create_registered_model(PYFUNC)
    mv = client.create_model_version(PYFUNC, f"{run.info.artifact_uri}/model", run.info.run_id)
    client.set_registered_model_alias(PYFUNC, "production", mv.version)


def mlflow_models_serve(stack: ExitStack, url: str, name: str, tmp: Path) -> str:
    port = services.free_port()
    args = [
        str(services.VENV_BIN / "mlflow"),
        "models",
        "serve",
        "-m",
        f"models:/{name}@production",
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    # MLflow runs `uvicorn` from PATH: the venv's.
    env = {"MLFLOW_TRACKING_URI": url, "PATH": f"{services.VENV_BIN}:{os.environ['PATH']}"}
    proc = stack.enter_context(services.process(args, tmp / f"mlflow-serve-{name}.log", env))
    server = f"http://127.0.0.1:{port}"
    services.wait_http(f"{server}/ping", timeout=300, proc=proc)
    return server


@pytest.fixture(scope="module")
def servers(mlflow_url, tmp_path_factory):
    """{model: (MLflow's URL, modelwatch's URL)}."""
    tmp = tmp_path_factory.mktemp("mlflow-compat")
    modelkit.register_version(mlflow_url, SKLEARN, seed=1, alias="production")
    register_pyfunc(mlflow_url)
    with ExitStack() as stack:
        out = {}
        for name in (SKLEARN, PYFUNC):
            ours = stack.enter_context(
                gunicorn(
                    tmp / name,
                    {"MLFLOW_TRACKING_URI": mlflow_url, "MODELWATCH_MODEL_NAME": name},
                    workers=1,
                )
            )
            services.wait_http(f"{ours.url}/ping", timeout=120, proc=ours.proc)  # a model
            out[name] = (mlflow_models_serve(stack, mlflow_url, name, tmp), ours.url)
        yield out


def send(url: str, case: Case) -> Answer:
    headers = {"Content-Type": case.content_type} if case.content_type else {}
    response = requests.request(
        case.method, url + case.path, data=case.body, headers=headers, timeout=60
    )
    return Answer.of(response, case.path)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_modelwatch_answers_as_mlflow_models_serve(servers, case):
    mlflow_url, ours_url = servers[case.model]
    theirs, ours = send(mlflow_url, case), send(ours_url, case)
    if case.id in DELIBERATE:
        why, (their_status, our_status, our_code) = DELIBERATE[case.id]
        assert (theirs.status, ours.status, ours.error_code) == (
            their_status,
            our_status,
            our_code,
        ), why
        return
    assert ours == theirs, case.source


def test_mlflows_own_client_sees_the_same_server(servers):
    """MLflow's ScoringServerClient (test_scoring_server_client): ready, same answers,
    same version."""
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient
    from mlflow.version import VERSION

    answers = []
    for url in servers[SKLEARN]:
        host, port = url.removeprefix("http://").split(":")
        client = ScoringServerClient(host=host, port=int(port))
        client.wait_server_ready(timeout=60)
        assert client.get_version() == VERSION
        answers.append(client.invoke(FRAME).get_predictions().to_numpy().ravel().tolist())
    assert answers[0] == answers[1] and len(answers[0]) == len(ROWS)
