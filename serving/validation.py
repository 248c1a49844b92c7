"""Request bodies -> one DataFrame -> checked against the model's input signature.

Checks are vectorised over columns (pandas dtype inference), never per-row loops:
missing columns, wrong types and non-finite numbers are a 422 that names every
offending column; unknown columns are ignored and named in `warnings`; nulls (and NaN
literals, which pandas' and MLflow's serialisers write for them) pass to the model's own
imputation.

/invocations bodies are read as MLflow's scoring server reads them
(mlflow/pyfunc/scoring_server/__init__.py): the content type and its parameters, JSON
with one of its four keys and `params`, CSV, parquet.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from flask import Request
from mlflow.pyfunc.scoring_server import (
    CONTENT_TYPES,
    REQUIRED_INPUT_FORMAT,
    SCORING_PROTOCOL_CHANGE_INFO,
)
from modelwatch.serving.errors import MODEL_ERROR, MlflowInputError, exception_text

from modelwatch.web.errors import ApiError

NUMERIC_TYPES = {"double", "float", "long", "integer"}
NUMERIC_KINDS = {"floating", "integer", "mixed-integer-float", "decimal", "empty"}
KIND_NAMES = {
    "floating": "number",
    "integer": "number",
    "mixed-integer-float": "number",
    "decimal": "number",
    "string": "string",
    "boolean": "boolean",
    "mixed": "mixed",
    "mixed-integer": "mixed",
    "bytes": "bytes",
}
SCORING_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
CSV, JSON, PARQUET = "text/csv", "application/json", "application/vnd.apache.parquet"
SCORING_TYPES = (CSV, JSON, PARQUET)
# A Parquet body may decode to this many times the body limit: a JSON body at the limit
# decodes to about as much as it is long, and Parquet's columns to less than their JSON.
DECODED_PER_BODY_BYTE = 4
# PostgreSQL's TEXT holds no NUL; no UTF-8 text (SQLite's, the Parquet export's) holds a
# lone surrogate, which JSON's "\ud800" escape makes.
UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
# The most of a malformed /invocations body its error repeats (MLflow repeats it whole).
ECHO_BYTES = 1000
# What /openapi.json says of text (JSON Schema cannot name a lone surrogate: its regex
# reads code points, and no JSON encoder a client uses writes one).
STORABLE_PATTERN = "^[^\\u0000]*$"


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str  # MLflow DataType name: double, float, long, integer, string, boolean...
    required: bool = True


def spec_from_signature(signature) -> list[ColumnSpec] | None:
    """Column specs of an MLflow signature's inputs; None when it has none (or tensors)."""
    if signature is None or signature.inputs is None:
        return None
    inputs = signature.inputs
    if not getattr(inputs, "has_input_names", lambda: False)() or inputs.is_tensor_spec():
        return None
    specs = []
    for col in inputs.inputs:
        dtype = getattr(col.type, "name", str(col.type))
        specs.append(ColumnSpec(col.name, str(dtype), bool(getattr(col, "required", True))))
    return specs


# -- bodies -------------------------------------------------------------------------------


def _parse_constant(name: str) -> float | None:
    # JSON has no NaN/Infinity; Python's parser accepts them. NaN is how pandas and
    # MLflow write a missing value: a null. Infinity is "not finite" to the signature check.
    if name == "NaN":
        return None
    return float("-inf") if name.startswith("-") else float("inf")


def read_json(request: Request, reason_prefix: str = ""):
    """The JSON body; 415 unless the content type is JSON, 400 if it does not parse."""
    if not request.is_json:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"expected Content-Type application/json, got {request.mimetype or 'none'}",
            {"content_type": request.content_type},
            reason="unsupported_media_type",
        )
    return parse_json_bytes(request.get_data(cache=False))


def _parse_int(text: str):
    # JSON integers have no size limit; floats stop near 1.8e308. One that no float can
    # hold is infinite to the signature check (not finite), never an OverflowError.
    if len(text) < 300:
        return int(text)
    try:
        return float(int(text))
    except (OverflowError, ValueError):
        return float("-inf") if text.startswith("-") else float("inf")


def _decode_json(raw: bytes):
    return json.loads(raw, parse_constant=_parse_constant, parse_int=_parse_int)


def parse_json_bytes(raw: bytes):
    try:
        return _decode_json(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(
            400,
            "malformed_json",
            f"request body is not valid JSON: {exc}",
            {},
            reason="malformed_json",
        ) from None


def bad_shape(message: str, details=None) -> ApiError:
    return ApiError(400, "bad_request", message, details or {}, reason="bad_shape")


def check_rows(n: int, max_rows: int, named_columns: bool = False) -> None:
    """`named_columns`: the body names its columns without rows (a CSV header). MLflow's
    model refuses that (BAD_REQUEST); its schema check refuses rows that name none."""
    # More rows than the limit breaks the schema /openapi.json publishes (maxItems): a 422
    # like any schema violation. 413 is for bodies over MODELWATCH_MAX_BODY_BYTES.
    if n > max_rows:
        raise ApiError(
            422,
            "too_many_rows",
            f"{n} rows is more than the limit of {max_rows}",
            {"rows": n, "max_rows": max_rows},
            reason="too_many_rows",
            mlflow_code="INVALID_PARAMETER_VALUE",
        )
    if n == 0 and named_columns:  # MLflow's model fails on it: its error, with the reason
        raise MlflowInputError(
            MODEL_ERROR, stack_trace="ValueError: no rows to score", reason="bad_shape"
        )
    if n == 0:
        raise ApiError(
            400,
            "bad_request",
            "no rows to score",
            {},
            reason="bad_shape",
            mlflow_code="INVALID_PARAMETER_VALUE",
        )


def _records(records: list, where: str) -> list[dict]:
    if not all(isinstance(r, dict) for r in records):
        raise bad_shape(f"every item of {where} must be an object of feature: value")
    return records


def predict_input(body, max_rows: int) -> list[dict]:
    """/predict: {"records": [{feature: value}, ...]}. The records themselves: `validate`
    takes them as they are, with no DataFrame in between."""
    if not isinstance(body, dict) or "records" not in body:
        raise bad_shape('expected {"records": [{feature: value, ...}, ...]}')
    records = body["records"]
    if not isinstance(records, list):
        raise bad_shape('"records" must be a list of objects')
    check_rows(len(records), max_rows)
    return _records(records, '"records"')


def unsupported(message: str, content_type: str | None) -> ApiError:
    return ApiError(
        415,
        "unsupported_media_type",
        message,
        {"content_type": content_type},
        reason="unsupported_media_type",
    )


def scoring_type(content_type: str | None) -> str:
    """The media type of an /invocations body, checked as MLflow checks it: a 415 for a
    charset other than UTF-8, for any other parameter (MLflow 1.x's `format=`), and for a
    type it does not read. Names are case-insensitive here (RFC 9110; MLflow compares
    them as sent) and an empty parameter (a trailing `;`) is no parameter."""
    kind, *pairs = [part.strip() for part in (content_type or "").split(";")]
    params = {
        k.strip().lower(): v.strip() for k, _, v in (pair.partition("=") for pair in pairs if pair)
    }
    if params.get("charset", "utf-8").lower() != "utf-8":
        raise unsupported("The scoring server only supports UTF-8", content_type)
    if set(params) - {"charset"}:
        raise unsupported(
            f"Unrecognized content type parameters: {', '.join(sorted(set(params) - {'charset'}))}"
            f". {SCORING_PROTOCOL_CHANGE_INFO}",
            content_type,
        )
    if kind.lower() not in SCORING_TYPES:
        raise unsupported(
            f"This predictor only supports the following content types: Types: "
            f"{CONTENT_TYPES}. Got '{content_type}'.",
            content_type,
        )
    return kind.lower()


def _read_csv(raw: bytes, spec: list[ColumnSpec] | None) -> pd.DataFrame:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid_input(
            f"Ensure that input is a valid UTF-8 encoded string. Error: '{_error_repr(exc, raw)}'",
            reason="malformed_json",
        ) from None
    try:
        df = pd.read_csv(io.StringIO(text))
    except (ValueError, pd.errors.ParserError) as exc:
        raise MlflowInputError(
            "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid "
            "CSV-formatted Pandas DataFrame produced using the `pandas.DataFrame.to_csv()` "
            f"method. Error: '{exc}'",
            stack_trace=exception_text(exc),
            reason="malformed_json",
        ) from None
    # CSV has no types: categorical columns that look numeric are text all the same.
    for col in spec or []:
        if col.type == "string" and col.name in df.columns:
            s = df[col.name]
            df[col.name] = s.astype(object).where(s.isna(), s.astype(str))
    return df


def _bad_parquet(exc: Exception, raw: bytes) -> ApiError:
    """MLflow's refusal, with the error of MLflow's own read (pandas' read_parquet names
    the source; pyarrow's footer read does not). A body whose footer does not read fails
    there at once, before any value is decoded."""
    try:
        pd.read_parquet(io.BytesIO(raw))
    except Exception as theirs:  # pyarrow raises several kinds
        exc = theirs
    return MlflowInputError(
        "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid "
        "Parquet Pandas DataFrame produced using the `pandas.DataFrame.to_parquet()` method. "
        f"Error: '{exc}'",
        stack_trace=exception_text(exc),
        reason="malformed_json",
    )


def _check_parquet_footer(raw: bytes, max_rows: int, max_decoded: int) -> None:
    """Refuse a Parquet body by its footer, before a value is decoded: compressed, a
    body far under the size limit can hold billions of rows (20M zeros are 87 KB), and
    decoding them is what costs the memory."""
    import pyarrow.parquet as pq  # noqa: PLC0415 (only Parquet bodies need it: 90 ms a worker)

    try:
        meta = pq.ParquetFile(io.BytesIO(raw)).metadata
        pages = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    except Exception as exc:  # pyarrow raises several kinds on a body that is not parquet
        raise _bad_parquet(exc, raw) from None
    check_rows(meta.num_rows, max_rows, named_columns=meta.num_columns > 0)
    # Every column takes at least 8 bytes a row once decoded, whatever its pages hold.
    _check_decoded(max(pages, meta.num_rows * meta.num_columns * 8), max_decoded)


def _check_decoded(size: int, max_decoded: int) -> None:
    if size > max_decoded:
        raise ApiError(
            413,
            "payload_too_large",
            f"the parquet body decodes to {size} bytes, "
            f"more than the {max_decoded} its size limit allows",
            {"decoded_bytes": size, "max_decoded_bytes": max_decoded},
            reason="too_large",
        )


def _read_parquet(raw: bytes, max_decoded: int) -> pd.DataFrame:
    """Text columns are read as dictionaries and measured before they are expanded: one
    long string repeated on every row is a few hundred bytes of body and its length times
    the rows decoded (then logged, row by row). In pandas, the rows share the
    dictionary's strings."""
    import pyarrow.parquet as pq  # noqa: PLC0415 (only Parquet bodies need it: 90 ms a worker)

    try:
        schema = pq.read_schema(io.BytesIO(raw))
        text = [
            f.name
            for f in schema
            if pa.types.is_string(f.type)
            or pa.types.is_large_string(f.type)
            or pa.types.is_binary(f.type)
        ]
        table = pq.read_table(io.BytesIO(raw), read_dictionary=text)
    except Exception as exc:  # pyarrow raises several kinds on a body that is not parquet
        raise _bad_parquet(exc, raw) from None
    # (and those the file itself stores as dictionaries, as pandas' categoricals)
    dictionaries = [
        f.name
        for f in table.schema
        if pa.types.is_dictionary(f.type) and not pa.types.is_dictionary(f.type.value_type)
    ]
    expanded = sum(
        _expanded_bytes(chunk) for name in dictionaries for chunk in table.column(name).chunks
    )
    _check_decoded(table.nbytes + expanded, max_decoded)
    df = table.to_pandas().reset_index(drop=True)
    for name in text:
        df[name] = df[name].astype(object)
    return df


def _expanded_bytes(chunk) -> int:
    values = chunk.dictionary
    if not (
        pa.types.is_string(values.type)
        or pa.types.is_large_string(values.type)
        or pa.types.is_binary(values.type)
    ):
        return 8 * len(chunk)
    return pc.sum(pc.take(pc.binary_length(values), chunk.indices)).as_py() or 0


def csv_rows_at_most(raw: bytes) -> int:
    """The data rows of a CSV body at most, from its bytes: its lines that are not blank
    (read_csv skips those), but the header. Exact unless a quoted field holds a line
    break (then it counts more).

    >>> csv_rows_at_most(b"a,b\\n1,2\\n\\n\\n3,4\\r\\n\\r\\n5,6")
    3
    """
    lines = raw.count(b"\n") + (1 if raw[raw.rfind(b"\n") + 1 :].strip() else 0)
    if b"\n\n" in raw or b"\n\r\n" in raw or raw.startswith((b"\n", b"\r\n")):
        data = np.frombuffer(b"\n" + raw, dtype=np.uint8)  # a blank line follows a "\n"
        newline, cr = data == 10, data[1:-1] == 13
        lines -= int(np.count_nonzero(newline[:-1] & newline[1:]))
        lines -= int(np.count_nonzero(newline[:-2] & cr & newline[2:]))
    return lines - 1


def invalid_input(message: str, reason: str = "bad_shape") -> MlflowInputError:
    """MLflow's MlflowInvalidInputException: "Invalid input. " and the message."""
    return MlflowInputError(f"Invalid input. {message}", reason=reason)


def _got(value, expected: type, name: str) -> str:
    # MLflow's words for what a frame's format was given instead.
    return name if isinstance(value, expected) else f"type {type(value)}"


def _not_a_frame(orient: str, reason) -> MlflowInputError:
    return invalid_input(
        f"Provided dataframe_{orient} field is not a valid dataframe representation in "
        f"'{orient}' format. Error: '{reason}'"
    )


def _split_frame(payload, max_rows: int) -> pd.DataFrame:
    """`dataframe_split` as pandas reads it: without `columns` the columns are numbered
    (and so missing from the signature, as in MLflow). Rows must be lists and columns
    names (pandas would take a list of values as one column)."""
    if not isinstance(payload, dict):
        raise invalid_input(
            f"Dataframe split format must be a dictionary. Got {_got(payload, list, 'list')}."
        )
    keys = set(payload)
    if "data" not in keys or keys - {"columns", "data", "index"}:
        raise invalid_input(
            "Dataframe split format must have 'data' field and optionally 'columns' and "
            f"'index' fields. Got {keys}.'"  # (MLflow's quote)
        )
    if not isinstance(payload["data"], list) or not all(
        isinstance(row, list) for row in payload["data"]
    ):
        raise _not_a_frame("split", "data must be a list of rows, each a list of values")
    cols = payload.get("columns")
    if cols is not None and (
        not isinstance(cols, list) or any(isinstance(c, (list, dict)) for c in cols)
    ):
        raise _not_a_frame("split", "columns must be a list of column names")
    check_rows(len(payload["data"]), max_rows, named_columns=bool(cols))
    try:
        return pd.DataFrame(payload["data"], columns=cols, index=payload.get("index")).reset_index(
            drop=True
        )
    except (ValueError, TypeError) as exc:
        raise _not_a_frame("split", exc) from None


def _tensor_input(key: str, payload, max_rows: int) -> pd.DataFrame | list[dict]:
    """`instances` / `inputs`: records, columns (a dict of lists) or one row (a dict of
    values). Rows as lists name no column: a 400, as in MLflow for a model whose
    signature names its columns."""
    if isinstance(payload, dict):
        values = list(payload.values())
        if values and all(isinstance(v, list) for v in values):
            lengths = {len(v) for v in values}
            if len(lengths) != 1:
                raise bad_shape(f'the columns of "{key}" must all have the same length')
            check_rows(lengths.pop(), max_rows)
            return pd.DataFrame(payload)
        if any(isinstance(v, (list, dict)) for v in values):
            raise bad_shape(f'"{key}" must map each column to a list, or each to one value')
        check_rows(1, max_rows)
        return pd.DataFrame([payload])
    if isinstance(payload, list):
        check_rows(len(payload), max_rows)
        if all(isinstance(r, dict) for r in payload):
            return payload  # records, checked one by one as dataframe_records are
    raise bad_shape(
        f'"{key}" must be a list of objects (records), or an object of columns '
        'or of one row\'s values'
    )


def _error_repr(exc: Exception, raw: bytes) -> str:
    # A decoding error's repr holds the whole body: past ECHO_BYTES, its type and message.
    return repr(exc) if len(raw) <= ECHO_BYTES else exception_text(exc)


def _echo(raw: bytes) -> str:
    if len(raw) <= ECHO_BYTES:
        return f"{raw}"
    return f"{raw[:ECHO_BYTES]}... ({len(raw)} bytes)"


def _scoring_body(raw: bytes) -> dict:
    """The JSON object of an /invocations body, refused in MLflow's words."""
    try:
        body = _decode_json(raw)
    except RecursionError:  # (MLflow fails with a 500)
        raise invalid_input("JSON nested too deeply", "malformed_json") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise invalid_input(
            "Ensure that input is a valid JSON formatted string. "
            f"Error: '{_error_repr(exc, raw)}'\nInput: \n{_echo(raw)}\n",
            reason="malformed_json",
        ) from None
    if isinstance(body, dict):
        return body
    if isinstance(body, list):
        raise invalid_input(f"{REQUIRED_INPUT_FORMAT}. Received a list.")
    raise invalid_input(f"{REQUIRED_INPUT_FORMAT}. Received unexpected input type '{type(body)}.")


def _scoring_json(raw: bytes, max_rows: int):
    body = _scoring_body(raw)
    keys = [k for k in body if k in SCORING_KEYS]  # in the body's order, as MLflow lists them
    if len(keys) != 1:
        raise bad_shape(
            f"{REQUIRED_INPUT_FORMAT}. Received dictionary with input fields: {keys}. "
            f"{SCORING_PROTOCOL_CHANGE_INFO}",
            {"found": keys, "allowed": list(SCORING_KEYS)},
        )
    key, payload, params = keys[0], body[keys[0]], body.get("params")
    if key == "dataframe_split":
        return _split_frame(payload, max_rows), params
    if key == "dataframe_records":
        if not isinstance(payload, list):
            raise invalid_input(
                "Dataframe records format must be a list of records. "
                f"Got {_got(payload, dict, 'dictionary')}."
            )
        check_rows(len(payload), max_rows)
        if not all(isinstance(r, dict) for r in payload):
            raise _not_a_frame("records", "every record must be an object of column: value")
        return payload, params
    return _tensor_input(key, payload, max_rows), params


def scoring_input(
    request: Request, spec: list[ColumnSpec] | None, max_rows: int, max_body_bytes: int
):
    """/invocations: (rows, params). The rows are a DataFrame, or for records the records
    (which `validate` takes as they are); `params` is the JSON body's, for the model's
    predict (None for CSV and parquet, as in MLflow). CSV and Parquet bodies over
    `max_rows` are refused before they are decoded, and Parquet that would decode to
    more than DECODED_PER_BODY_BYTE times the body limit too."""
    kind = scoring_type(request.headers.get("Content-Type"))
    raw = request.get_data(cache=False)
    if kind == JSON:
        return _scoring_json(raw, max_rows)
    if kind == PARQUET:
        _check_parquet_footer(raw, max_rows, DECODED_PER_BODY_BYTE * max_body_bytes)
    elif b'"' not in raw:  # quoted, a line may be part of a row: decoded, then counted
        rows = csv_rows_at_most(raw)
        if rows > max_rows:
            check_rows(rows, max_rows)
    df = (
        _read_csv(raw, spec)
        if kind == CSV
        else _read_parquet(raw, DECODED_PER_BODY_BYTE * max_body_bytes)
    )
    check_rows(len(df), max_rows, named_columns=len(df.columns) > 0)
    return df, None


# -- the signature check -----------------------------------------------------------------


class Validated:
    """Rows checked against the signature: one array per column in signature order (what
    a compiled model reads), and the DataFrame of them, built on first use (what sklearn,
    pyfunc and the prediction log read; with a compiled model that is the log's writer
    thread, off the request path)."""

    def __init__(
        self,
        columns: dict | None = None,
        rows: int = 0,
        frame: pd.DataFrame | None = None,
        warnings: list | None = None,
        unknown_columns: list | None = None,
        null_rows: int = 0,
    ) -> None:
        self._columns = columns
        self._frame = frame
        self.rows = len(frame) if frame is not None else rows
        self.warnings = warnings or []
        self.unknown_columns = unknown_columns or []
        self.null_rows = null_rows

    def __len__(self) -> int:
        return self.rows

    @property
    def columns(self) -> dict:
        if self._columns is None:
            self._columns = {c: self._frame[c].to_numpy() for c in self._frame.columns}
        return self._columns

    @property
    def frame(self) -> pd.DataFrame:
        if self._frame is None:
            self._frame = pd.DataFrame(
                self._columns, index=pd.RangeIndex(self.rows), columns=list(self._columns)
            )
        return self._frame


def unstorable(value) -> bool:
    return isinstance(value, str) and UNSTORABLE.search(value) is not None


def unstorable_rows(values) -> list[int]:
    """Rows whose text the prediction log cannot hold (`UNSTORABLE`):
    one scan of all the column's text, and a look at each value only when it finds one."""
    texts = [v for v in values if isinstance(v, str)]
    if not UNSTORABLE.search("".join(texts)):
        return []
    return [i for i, v in enumerate(values) if unstorable(v)]


def check_text_columns(df: pd.DataFrame) -> None:
    """A model without a signature: its text columns are logged as they come, so they
    are checked here (a signature's string columns are checked with its types)."""
    problems = [
        {"column": str(name), "problem": "unstorable_text", "rows": bad[:20], "count": len(bad)}
        for name in df.columns[df.dtypes == np.dtype(object)]
        if (bad := unstorable_rows(df[name].to_numpy()))
    ]
    if problems:
        raise ApiError(
            422,
            "unstorable_text",
            "text the prediction log cannot store (a NUL "
            "character or a lone surrogate) in: " + ", ".join(p["column"] for p in problems),
            {"columns": problems},
            reason="unstorable_text",
        )


def _kind(values) -> str:
    return pd.api.types.infer_dtype(values, skipna=True)


# The common case, checked value by value in Python: for the small requests that most
# are, that is several times cheaper than pandas' null and dtype inference per column.
_NUMBER = {int, float}
_ABSENT = object()  # a record without the key, told apart from an explicit null
_NONE = type(None)


def _plain_numbers(arr: np.ndarray) -> np.ndarray:
    """An object column of JSON numbers and nulls as float64 (NaN for null); anything
    else unchanged, for the general checks to name. (bool is not a number here.)"""
    if arr.dtype != object:
        return arr
    kinds = set(map(type, arr))
    if kinds <= _NUMBER and kinds:
        return np.array(arr.tolist(), dtype="float64")
    if kinds - {_NONE} <= _NUMBER and kinds != {_NONE}:
        return np.array([np.nan if v is None else v for v in arr], dtype="float64")
    return arr


def _nulls_and_kind(arr: np.ndarray) -> tuple[np.ndarray, str]:
    """Which values are null, and the inferred kind of the others ("empty" if none)."""
    kinds = set(map(type, arr)) if arr.dtype == object else None
    if kinds is not None and kinds <= {str, _NONE}:
        nulls = np.fromiter((v is None for v in arr), dtype=bool, count=len(arr))
        return nulls, ("string" if str in kinds else "empty")
    nulls = pd.isna(arr)
    if nulls.all():
        return nulls, "empty"
    return nulls, _kind(arr[~nulls] if nulls.any() else arr)


def as_frame(data: pd.DataFrame | list[dict]) -> pd.DataFrame:
    """A DataFrame of what `validate` accepts (records become one)."""
    if isinstance(data, pd.DataFrame):
        return data
    return pd.DataFrame.from_records(data) if data else pd.DataFrame()


def validate(df: pd.DataFrame | list[dict], spec: list[ColumnSpec] | None) -> Validated:
    """Check `df` (a DataFrame, or a list of records as parsed from JSON) against `spec`
    and cast it to the signature's types (a new frame in signature order). Raises a 422
    ApiError naming every offending column.

    Works on each column's ndarray and builds the frame once at the end: this runs on
    every request, and per-column pandas Series (masks, slices, casts, index alignment)
    cost more than scoring a small request does. Records go straight to column arrays,
    without a DataFrame of the request in between.
    """
    if isinstance(df, list):
        if spec is None:
            return validate(as_frame(df), None)
        records = df
        n = len(records)
        present = list(dict.fromkeys(k for r in records for k in r))
        absent: dict[str, list[int]] = {}  # column -> records that lack it

        def column(name):
            values = [r.get(name, _ABSENT) for r in records]
            if any(v is _ABSENT for v in values):
                absent[name] = [i for i, v in enumerate(values) if v is _ABSENT]
                values = [None if v is _ABSENT else v for v in values]
            return np.fromiter(values, dtype=object, count=n)

        def raw(name, arr):
            return arr
    else:
        if not df.columns.is_unique:
            raise bad_shape("duplicate column names", {"columns": list(df.columns)})
        if spec is None:
            check_text_columns(df)
            return Validated(frame=df, null_rows=int(df.isna().any(axis=1).sum()))
        n = len(df)
        present = list(df.columns)

        def column(name):
            return df[name].to_numpy()

        def raw(name, arr):
            return df[name].reset_index(drop=True)

        absent = {}

    names = [c.name for c in spec]
    known = set(names)
    present_set = set(present)
    problems: list[dict] = []
    out: dict[str, object] = {}
    null_any = np.zeros(n, dtype=bool)
    for col in spec:
        if col.name not in present_set:
            if col.required:
                problems.append({"column": col.name, "problem": "missing", "expected": col.type})
            out[col.name] = np.full(
                n, np.nan, dtype="float64" if col.type in NUMERIC_TYPES else object
            )
            null_any[:] = True
            continue
        arr = column(col.name)
        if col.type in NUMERIC_TYPES:
            arr = _plain_numbers(arr)
            if arr.dtype.kind in "iuf":
                values = arr.astype("float64", copy=False)
                nulls = np.isnan(values)
            else:
                nulls = pd.isna(arr)
                all_null = bool(nulls.all())
                if all_null:
                    kind = "empty"
                else:
                    kind = _kind(arr[~nulls] if nulls.any() else arr)
                if kind not in NUMERIC_KINDS:
                    problems.append(
                        {
                            "column": col.name,
                            "problem": "wrong_type",
                            "expected": col.type,
                            "got": KIND_NAMES.get(kind, kind),
                        }
                    )
                    continue
                values = np.full(n, np.nan)
                if not all_null:
                    values[~nulls] = arr[~nulls].astype("float64")
            bad = np.isinf(values)
            if bad.any():
                rows = np.flatnonzero(bad)
                problems.append(
                    {
                        "column": col.name,
                        "problem": "not_finite",
                        "rows": rows[:20].tolist(),
                        "count": int(bad.sum()),
                    }
                )
                continue
            any_null = bool(nulls.any())
            if (
                col.type in ("long", "integer")
                and not any_null
                and bool(np.all(np.mod(values, 1) == 0))
            ):
                out[col.name] = values.astype("int64" if col.type == "long" else "int32")
            elif col.type == "float":
                out[col.name] = values.astype("float32")
            else:
                out[col.name] = values
            if any_null:
                null_any |= nulls
        elif col.type in ("string", "boolean"):
            nulls, kind = _nulls_and_kind(arr)
            any_null = bool(nulls.any())
            expected = col.type
            if kind not in (expected, "empty"):
                problems.append(
                    {
                        "column": col.name,
                        "problem": "wrong_type",
                        "expected": expected,
                        "got": KIND_NAMES.get(kind, kind),
                    }
                )
                continue
            if expected == "string":
                bad = unstorable_rows(arr)
                if bad:
                    problems.append(
                        {
                            "column": col.name,
                            "problem": "unstorable_text",
                            "rows": bad[:20],
                            "count": len(bad),
                        }
                    )
                    continue
                arr = arr.astype(object, copy=False)
                if any_null:
                    arr = arr.copy()
                    arr[nulls] = np.nan
                out[col.name] = arr
            else:
                out[col.name] = raw(col.name, arr)
            if any_null:
                null_any |= nulls
        else:
            out[col.name] = raw(col.name, arr)
            null_any |= np.asarray(pd.isna(arr), dtype=bool)
    for name, rows in absent.items():
        if next(c for c in spec if c.name == name).required:
            # A record must name every required column (null is fine): the same record
            # alone would be a 422, so it is one in a batch too, not silently imputed.
            problems.append(
                {"column": name, "problem": "missing", "rows": rows[:20], "count": len(rows)}
            )
    if problems:
        summary = ", ".join(f"{p['column']} ({p['problem'].replace('_', ' ')})" for p in problems)
        reason = sorted(
            {"missing_column" if p["problem"] == "missing" else p["problem"] for p in problems}
        )
        # MLflow's codes: a missing column fails its schema enforcement
        # (INVALID_PARAMETER_VALUE), a value it cannot convert is a BAD_REQUEST.
        raise ApiError(
            422,
            "signature_violation",
            f"input does not match the model signature: {summary}",
            {"columns": problems},
            reason=reason,
            mlflow_code="INVALID_PARAMETER_VALUE" if "missing_column" in reason else "BAD_REQUEST",
        )
    unknown = [str(c) for c in present if c not in known]
    warnings = []
    if unknown:
        warnings.append(
            {
                "code": "unknown_columns",
                "columns": unknown,
                "message": "columns not in the model signature were ignored",
            }
        )
    return Validated(
        out, n, warnings=warnings, unknown_columns=unknown, null_rows=int(null_any.sum())
    )
