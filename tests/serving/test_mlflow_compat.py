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

Compared: the status, the media type and the whole body, messages included (MLflow's
error object: error_code, message, sqlstate, error_class, stack_trace), as a JSON document
(modelwatch's parsed strictly: no NaN). Not compared: the order of a Python set a message
prints (each process hashes strings its own way), a stack_trace's text (MLflow's names its
files; modelwatch sends the exception alone), and the message of the cases in
`MESSAGE_UNSTABLE` (MLflow's prints the request's frame and the schema). MLflow's own
test assertions are replayed too (`MLFLOW_ASSERTIONS`): every one MLflow passes here,
modelwatch must.

Where modelwatch answers otherwise on purpose, the case says why and both answers are
checked, so that a change on either side shows (`DELIBERATE`)."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
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
    "text in a number column": (
        "both refuse it (400, BAD_REQUEST); MLflow's message is the first value its "
        "conversion failed on, modelwatch's names every offending column and its problem",
        (400, 400, "BAD_REQUEST"),
    ),
    "instances as rows of values": (
        "both refuse rows that name no column (400, BAD_REQUEST); MLflow's message is the "
        "first value numpy failed to convert, modelwatch's says how to name the columns",
        (400, 400, "BAD_REQUEST"),
    ),
}
# Case -> why its message is not compared (the rest of the body is): MLflow's schema
# enforcement prints the request's frame (pandas' repr, cut to the terminal's width) and
# the whole schema; modelwatch names the missing columns or the parameter.
MESSAGE_UNSTABLE = {
    case: "MLflow's message prints the frame and the schema"
    for case in (
        "frame of other columns",
        "split without columns",
        "a column missing",
        "no records",
        "pyfunc param of the wrong type",
        "pyfunc params not an object",
    )
}


def _code(code: str):
    return lambda a: a.error_code == code


def _has(key: str):
    return lambda a: isinstance(a.body, dict) and key in a.body


def _says(text: str):
    return lambda a: isinstance(a.body, dict) and text in a.body.get("message", "")


def _status(status: int):
    return lambda a: a.status == status


ONE_OF_THE_FIELDS = "The input must be a JSON dictionary with exactly one of the input fields"
# MLflow's own assertions (test_scoring_server.py), each on the request its test sends, as
# CASES makes it here: (case, what the test asserts, the check).
MLFLOW_ASSERTIONS = [
    ("malformed json", "error_code BAD_REQUEST", _code("BAD_REQUEST")),
    (
        "malformed json",
        "message: Failed to parse input from JSON. Ensure that input is a valid JSON ...",
        _says(
            "Failed to parse input from JSON. Ensure that input is a valid JSON formatted string."
        ),
    ),
    *[
        check
        for case in ("json number", "json string", "json list")
        for check in [
            (case, "error_code BAD_REQUEST", _code("BAD_REQUEST")),
            (case, "a message", _has("message")),
            (case, f"message: {ONE_OF_THE_FIELDS}", _says(ONE_OF_THE_FIELDS)),
        ]
    ],
    *[
        check
        for case in ("no format key", "two format keys")
        for check in [
            (case, "error_code BAD_REQUEST", _code("BAD_REQUEST")),
            (case, f"message: {ONE_OF_THE_FIELDS}", _says(ONE_OF_THE_FIELDS)),
        ]
    ],
    ("dataframe_split as records", "error_code BAD_REQUEST", _code("BAD_REQUEST")),
    (
        "dataframe_split as records",
        "message: Dataframe split format must be a dictionary. Got list",
        _says("Dataframe split format must be a dictionary. Got list"),
    ),
    ("dataframe_records as split", "error_code BAD_REQUEST", _code("BAD_REQUEST")),
    (
        "dataframe_records as split",
        "message: Dataframe records format must be a list of records. Got dictionary.",
        _says("Dataframe records format must be a list of records. Got dictionary."),
    ),
    ("split, index of another length", "error_code BAD_REQUEST", _code("BAD_REQUEST")),
    (
        "split, index of another length",
        "message: Provided dataframe_split field is not a valid dataframe representation",
        _says("Provided dataframe_split field is not a valid dataframe representation"),
    ),
    *[
        check
        for case in ("frame of other columns", "empty csv")
        for check in [
            (case, "an error_code", _has("error_code")),
            (case, "error_code BAD_REQUEST", _code("BAD_REQUEST")),
            (case, "a message", _has("message")),
            (case, "a stack_trace", _has("stack_trace")),
        ]
    ],
    *[
        (case, "status 200", _status(200))
        for case in (
            "dataframe_records",
            "records, charset=UTF-8",
            "dataframe_split",
            "split, charset=UTF-8",
            "instances as rows of values",
            "instances as records",
            "inputs as columns",
            "params, no params schema",
            "pyfunc param not in its schema",
        )
    ],
    ("unsupported content type", "status 415", _status(415)),
    ("unknown content type parameter", "status 415", _status(415)),
    ("pyfunc param of the wrong type", "status 400", _status(400)),
]


def strict_json(text: str):
    """JSON as RFC 8259 has it: a NaN or Infinity token fails (Python's parser takes them)."""

    def refuse(token):
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


# A Python set in a message ({'inputs', 'instances', ...}): its order is the process's
# string hashing, so each server prints its own; compared sorted.
SET_LITERAL = re.compile(r"\{'[^{}]*'\}")


def _sorted_sets(message: str) -> str:
    return SET_LITERAL.sub(
        lambda m: "{" + ", ".join(sorted(m.group()[1:-1].split(", "))) + "}", message
    )


@dataclass(frozen=True)
class Answer:
    status: int
    media_type: str
    body: object  # the JSON document of /invocations, else the text

    @classmethod
    def of(cls, response: requests.Response, path: str, strict: bool) -> Answer:
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        body = response.text
        if media_type == JSON and path == "/invocations":
            body = strict_json(body) if strict else response.json()
            if isinstance(body, dict) and "message" in body:
                body["message"] = _sorted_sets(body["message"])
            if isinstance(body, dict) and "stack_trace" in body:
                # A traceback names the server's files: compared for its presence.
                body["stack_trace"] = "(present)"
        return cls(response.status_code, media_type, body)

    @property
    def error_code(self) -> str | None:
        return self.body.get("error_code") if isinstance(self.body, dict) else None

    def without_message(self) -> Answer:
        body = {k: v for k, v in self.body.items() if k != "message"}
        return dataclasses.replace(self, body=body)


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


def send(url: str, case: Case, strict: bool = True) -> Answer:
    headers = {"Content-Type": case.content_type} if case.content_type else {}
    response = requests.request(
        case.method, url + case.path, data=case.body, headers=headers, timeout=60
    )
    return Answer.of(response, case.path, strict)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_modelwatch_answers_as_mlflow_models_serve(servers, case):
    mlflow_url, ours_url = servers[case.model]
    theirs, ours = send(mlflow_url, case, strict=False), send(ours_url, case)
    if case.id in MESSAGE_UNSTABLE:
        theirs, ours = theirs.without_message(), ours.without_message()
    if case.id in DELIBERATE:
        why, (their_status, our_status, our_code) = DELIBERATE[case.id]
        assert (theirs.status, ours.status, ours.error_code) == (
            their_status,
            our_status,
            our_code,
        ), why
        return
    assert ours == theirs, case.source


def test_modelwatch_passes_every_assertion_of_mlflows_tests_that_mlflow_passes(servers):
    """MLflow's own scoring-server tests, asserted on both servers: every assertion that
    holds for `mlflow models serve` holds for modelwatch. (Some do not hold for MLflow on
    these models: its tests' model has no signature, and its own message changed.)"""
    cases = {c.id: c for c in CASES}
    answers = {}
    for case_id in dict.fromkeys(case for case, _, _ in MLFLOW_ASSERTIONS):
        mlflow_url, ours_url = servers[cases[case_id].model]
        answers[case_id] = (
            send(mlflow_url, cases[case_id], strict=False),
            send(ours_url, cases[case_id]),
        )
    held = [(c, what) for c, what, check in MLFLOW_ASSERTIONS if check(answers[c][0])]
    ours = [(c, what) for c, what, check in MLFLOW_ASSERTIONS if check(answers[c][1])]
    print(
        f"MLflow's assertions: {len(MLFLOW_ASSERTIONS)}; MLflow passes {len(held)}, "
        f"modelwatch {len(set(held) & set(ours))} of those"
    )
    assert [a for a in held if a not in ours] == []


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


def test_every_answer_of_serving_is_strict_json(servers):
    """A null where the pyfunc needs a value answers NaN: MLflow writes the token,
    modelwatch answers null with a warning naming the answer and the null column, on
    /predict and /invocations; every other route's answer parses strictly too (but
    /ping's and /version's, MLflow's "\\n" and bare version string)."""
    mlflow_url, ours = servers[PYFUNC]
    rows = rows_with(debt_to_income=float("nan"))
    theirs = requests.post(
        f"{mlflow_url}/invocations",
        data=dumps({"dataframe_records": rows}),
        headers={"Content-Type": JSON},
        timeout=60,
    )
    assert theirs.status_code == 200 and "NaN" in theirs.text  # DELIBERATE: not JSON
    with pytest.raises(ValueError, match="NaN is not JSON"):
        strict_json(theirs.text)

    answer = requests.post(
        f"{ours}/invocations",
        data=dumps({"dataframe_records": rows}),
        headers={"Content-Type": JSON},
        timeout=60,
    )
    body = strict_json(answer.text)
    assert answer.status_code == 200, answer.text
    assert body["predictions"][0] == {"label": None, "confidence": None}
    assert body["predictions"][1:] == theirs.json()["predictions"][1:]
    (warning,) = [w for w in body["warnings"] if w["code"] == "not_finite"]
    assert warning["paths"] == ["predictions[0].label", "predictions[0].confidence"]
    assert warning["message"] == (
        "predictions[0].label is not a finite number (NaN), answered as null: a null in "
        "required column debt_to_income? (and 1 more, in paths)"
    )

    nulls = [{**ROWS[0], "debt_to_income": None}] + ROWS[1:]
    predicted = requests.post(f"{ours}/predict", json={"records": nulls}, timeout=60)
    body = strict_json(predicted.text)
    assert predicted.status_code == 200, predicted.text
    assert body["predictions"][0] is None and None not in body["predictions"][1:]
    (warning,) = [w for w in body["warnings"] if w["code"] == "not_finite"]
    assert (warning["paths"], warning["count"]) == (["predictions[0]"], 1)
    assert "required column debt_to_income?" in warning["message"]

    ids = body["prediction_ids"]
    feedback = [{"prediction_id": i, "label": 1} for i in ids] + [
        {"prediction_id": "no-such-id", "label": 0}
    ]
    for method, path, payload in [
        ("POST", "/feedback", {"feedback": feedback}),
        ("GET", "/model", None),
        ("GET", "/ready", None),
        ("GET", "/health", None),
        ("GET", "/openapi.json", None),
        ("POST", "/predict", {"records": [{"debt_to_income": "high"}]}),  # a 422
        ("GET", "/no-such-route", None),
    ]:
        response = requests.request(method, ours + path, json=payload, timeout=60)
        assert response.status_code < 500, (path, response.text)
        strict_json(response.text)
