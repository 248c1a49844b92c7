"""modelwatch/settings.py is the one configuration layer: every variable is defined there
once, parsed one way, read through it by every component, and the docs show its table."""

from __future__ import annotations

import re
import runpy
import subprocess

import pytest
import yaml

from modelwatch import settings
from modelwatch.settings import SETTINGS, SettingError, default, read
from tests.stack_config import contract as c

PACKAGES = ("training", "serving", "monitoring", "modelwatch")
PYTHON_TYPES = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "duration": str,
    "list": tuple,
}
# A read of a MODELWATCH_* variable: os.environ.get / [ ], os.getenv, or .get/.pop on any
# environment mapping, with the name as a literal or the start of an f-string.
DIRECT_READ = re.compile(
    r"""(?:\.get|getenv|\.pop|\.setdefault)\(\s*f?["']MODELWATCH_|environ\[\s*f?["']MODELWATCH_[^"']*["']\s*\](?!\s*=[^=])"""
)


# os.environ.get(name), os.getenv(name), os.environ[name] (but not a write to it).
COMPUTED_READ = re.compile(
    r"""os\.(?:environ\.get|getenv)\(\s*(?!["'])|os\.environ\[\s*(?!["'])[^\]]*\](?!\s*=[^=])"""
)


def sources():
    for package in PACKAGES:
        for path in sorted((c.ROOT / package).rglob("*.py")):
            yield path.relative_to(c.ROOT), path.read_text()


def test_booleans_are_parsed_one_way():
    for word in ("1", "true", "TRUE", "Yes", "on", " yes "):
        assert read("MODELWATCH_SHADOW", {"MODELWATCH_SHADOW": word}) is True
    for word in ("0", "false", "No", "OFF"):
        assert read("MODELWATCH_TRUST_REGISTRY", {"MODELWATCH_TRUST_REGISTRY": word}) is False
    with pytest.raises(SettingError, match=r"MODELWATCH_MONITOR_MLFLOW='maybe': not a boolean"):
        read("MODELWATCH_MONITOR_MLFLOW", {"MODELWATCH_MONITOR_MLFLOW": "maybe"})


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("MODELWATCH_WORKERS", "two", "not an integer"),
        ("MODELWATCH_WORKERS", "2.5", "not an integer"),
        ("MODELWATCH_RELOAD_INTERVAL", "soon", "not a number"),
        ("MODELWATCH_RETRAIN_WINDOW", "a day", "not a duration"),
        ("MODELWATCH_SERVING_PORT", "eighty", "not an integer"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_value(name, value, message):
    with pytest.raises(SettingError) as raised:
        read(name, {name: value})
    assert str(raised.value).startswith(f"{name}={value!r}: {message}")


def test_values_defaults_and_empty():
    env = {
        "MODELWATCH_SKOPS_TRUSTED_TYPES": " a.B, ,c.D ",
        "MODELWATCH_RETRAIN_WINDOW": " 90m ",
        "MODELWATCH_COST_PER_CPU_HOUR": "0.04",
        "MODELWATCH_MODEL_NAME": "",
    }
    assert read("MODELWATCH_SKOPS_TRUSTED_TYPES", env) == ("a.B", "c.D")
    assert read("MODELWATCH_RETRAIN_WINDOW", env) == "90m"
    assert read("MODELWATCH_COST_PER_CPU_HOUR", env) == 0.04
    assert read("MODELWATCH_COST_PER_GB_HOUR", env) is None  # optional: unset is None
    assert read("MODELWATCH_MODEL_NAME", env) == "credit-default"  # empty is unset
    # ... except where empty means "none"
    assert read("MODELWATCH_SEGMENTS", {"MODELWATCH_SEGMENTS": ""}) == ""
    assert read("MODELWATCH_SEGMENTS", {}) is None
    assert settings.duration_seconds("2w") == 14 * 86400


def test_every_setting_is_well_formed():
    for name, s in SETTINGS.items():
        assert name.startswith(("MODELWATCH_", "MLFLOW_")) and s.type in settings.PARSERS, name
        assert s.readers and set(s.readers) <= {
            settings.SERVING,
            settings.GUNICORN,
            settings.MONITOR,
            settings.CLI,
            settings.STACK,
            settings.DEMO,
            settings.TRAINING,
        }
        assert s.meaning, name
        if s.default is not None:  # of the type its parser gives
            assert type(s.default) is PYTHON_TYPES[s.type], name


def test_no_module_reads_a_modelwatch_variable_itself():
    """Everything goes through modelwatch/settings.py; building a child's environment
    (`env["MODELWATCH_X"] = ...`, a dict literal) is not a read."""
    found = [
        f"{path}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
        for path, text in sources()
        if path.as_posix() != "modelwatch/settings.py"
        for m in DIRECT_READ.finditer(text)
    ]
    assert found == []


def test_every_other_environment_read_names_its_variable():
    """So that the scan above cannot miss a computed name (f"MODELWATCH_{name}" in a variable)."""
    found = [
        f"{path}: {m.group(0)}"
        for path, text in sources()
        if path.as_posix() != "modelwatch/settings.py"
        for m in COMPUTED_READ.finditer(text)
    ]
    assert found == []


def test_the_scan_sees_a_direct_read():
    for code in (
        'os.environ.get("MODELWATCH_X", "1")',
        "os.environ['MODELWATCH_X']",
        'os.getenv("MODELWATCH_X")',
        'env.get(f"MODELWATCH_{name}")',
        "self.service_env().get('MODELWATCH_WORKERS', '2')",
    ):
        assert DIRECT_READ.search(code), code
    for code in ('env["MODELWATCH_X"] = "1"', '{"MODELWATCH_X": "1"}', 'read("MODELWATCH_X")'):
        assert not DIRECT_READ.search(code), code
    for code in ("os.environ.get(variable)", "os.getenv(name, '1')", "os.environ[variable]"):
        assert COMPUTED_READ.search(code), code
    for code in ("os.environ[name] = value", "os.environ.get('PATH', '')"):
        assert not COMPUTED_READ.search(code), code


def test_every_variable_the_code_names_is_defined():
    named = {
        name
        for path, text in sources()
        for name in re.findall(r"\b(MODELWATCH_[A-Z0-9_]*[A-Z0-9])\b", text)
    }
    assert named - set(SETTINGS) == set()


def readme_table() -> str:
    text = (c.ROOT / "README.md").read_text()
    return text.split(settings.README_BEGIN, 1)[1].split(settings.README_END, 1)[0].strip()


def test_the_readme_table_is_the_settings_table():
    """Generated: every variable with its default in the README, and nothing else."""
    assert readme_table() == settings.markdown_table(settings._stack_values()), (
        "run `.venv/bin/python -m modelwatch.settings README.md`"
    )
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]*?) \|", readme_table(), re.M))
    assert rows == {name: s.shown_default() for name, s in SETTINGS.items()}


def test_mlproject_defaults_are_the_settings():
    """MLflow needs literal parameter defaults: they must be the settings' own."""
    entry = yaml.safe_load((c.ROOT / "modelwatch" / "project" / "MLproject").read_text())[
        "entry_points"
    ]
    model_name = default("MODELWATCH_MODEL_NAME")
    for name in ("main", "retrain", "batch_score"):
        assert entry[name]["parameters"]["model_name"]["default"] == model_name, name
    assert entry["retrain"]["parameters"]["window"]["default"] == default(
        "MODELWATCH_RETRAIN_WINDOW"
    )
    assert entry["onboard"]["parameters"]["alias"]["default"] == default("MODELWATCH_MODEL_ALIAS")


def test_restated_library_defaults_agree():
    from modelwatch.monitoring.calculators import fairness
    from modelwatch.monitoring.calculators.bounded import DEFAULT_CHUNK_ROWS

    assert DEFAULT_CHUNK_ROWS == default("MODELWATCH_MONITOR_WINDOW_ROWS")
    assert SETTINGS["MODELWATCH_FAIRNESS_MIN_RATIO"].shown == f"{fairness.MIN_RATIO:g}"
    assert SETTINGS["MODELWATCH_FAIRNESS_MAX_DIFFERENCE"].shown == f"{fairness.MAX_DIFFERENCE:g}"


def test_serving_and_the_monitor_read_the_same_values(monkeypatch):
    from modelwatch.monitoring.service.config import MonitorConfig
    from modelwatch.serving.config import Config

    monkeypatch.setenv("MODELWATCH_MODEL_NAME", "loans")
    monkeypatch.setenv("MODELWATCH_STORE_URL", "sqlite:///elsewhere.db")
    monkeypatch.setenv("MODELWATCH_MONITOR_MLFLOW", "no")  # once only "0" turned it off
    monkeypatch.setenv("MODELWATCH_BUILTIN_ALERTS", "true")  # once only "1" turned it on
    serving, monitor = Config.from_env(), MonitorConfig.from_env()
    assert serving.model_name == monitor.model_name == "loans"
    assert serving.store_url == monitor.store_url == "sqlite:///elsewhere.db"
    assert monitor.log_to_mlflow is False and monitor.builtin_alerts is True
    assert Config() == Config.from_env({})  # the dataclass's defaults are the table's
    monkeypatch.setenv("MODELWATCH_SHADOW", "maybe")
    with pytest.raises(SettingError, match="MODELWATCH_SHADOW='maybe'"):
        Config.from_env()


def test_the_cli_defaults_come_from_the_settings(monkeypatch):
    from modelwatch.cli import build_parser

    monkeypatch.setenv("MODELWATCH_MODEL_NAME", "loans")
    monkeypatch.setenv("MODELWATCH_WORKERS", "3")
    monkeypatch.setenv("MODELWATCH_SERVING_URL", "http://0.0.0.0:9000")
    parser = build_parser()
    assert parser.parse_args(["train"]).model_name == "loans"
    assert parser.parse_args(["retrain"]).model_name == "loans"
    serve = parser.parse_args(["serve"])
    assert (serve.workers, serve.host, serve.port) == (3, "0.0.0.0", 9000)
    monitor = parser.parse_args(["monitor"])
    assert (monitor.host, monitor.port) == ("127.0.0.1", settings.PORTS["monitor"])
    assert (
        parser.parse_args(["onboard", "--model-name", "m", "--reference", "r.csv"]).chunk_rows
        == 2000
    )


@pytest.mark.parametrize("argv", [["serve"], ["monitor"], ["simulate", "--scenario", "baseline"]])
def test_the_cli_refuses_a_bad_value_in_one_line(monkeypatch, capsys, argv):
    from modelwatch.cli import main

    monkeypatch.setenv("MODELWATCH_WORKERS", "many")
    assert main(argv) == 2
    assert capsys.readouterr().err == "error: MODELWATCH_WORKERS='many': not an integer\n"


def test_the_monitor_refuses_a_bad_value_in_one_line(monkeypatch, capsys):
    from modelwatch.cli import main

    monkeypatch.setenv("MODELWATCH_MONITOR_INTERVAL", "often")
    assert main(["monitor", "--port", "9"]) == 2
    assert capsys.readouterr().err == "error: MODELWATCH_MONITOR_INTERVAL='often': not a number\n"


def test_gunicorn_config_refuses_a_bad_value_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setenv("MODELWATCH_THREADS", "4")
    assert runpy.run_path(str(c.ROOT / "serving" / "gunicorn.conf.py"))["threads"] == 4
    for name, value in (("MODELWATCH_THREADS", "four"), ("MODELWATCH_MAX_ROWS", "lots")):
        monkeypatch.setenv(name, value)
        with pytest.raises(SystemExit) as exited:
            runpy.run_path(str(c.ROOT / "serving" / "gunicorn.conf.py"))
        assert str(exited.value).startswith(f"error: {name}={value!r}")
        monkeypatch.delenv(name)


def test_the_stack_reads_its_ports_and_refuses_a_bad_value(monkeypatch, tmp_path):
    from modelwatch.cli.stack import Stack, StackError

    monkeypatch.setenv("MODELWATCH_HOME", str(tmp_path))
    monkeypatch.setenv("MODELWATCH_SERVING_PORT", "18000")
    stack = Stack.default()
    assert stack.home == tmp_path and stack.ports["serving"] == 18000
    assert stack.ports["mlflow"] == default("MODELWATCH_MLFLOW_PORT")
    monkeypatch.setenv("MODELWATCH_SHADOW", "perhaps")
    with pytest.raises(StackError, match="MODELWATCH_SHADOW='perhaps'"):
        stack.up()
    assert not (tmp_path / "run").exists(), "nothing started"
    monkeypatch.setenv("MODELWATCH_SERVING_PORT", "eighty")
    with pytest.raises(StackError, match="MODELWATCH_SERVING_PORT='eighty'"):
        Stack.default()


@pytest.mark.slow
def test_gunicorn_exits_with_one_line(tmp_path):
    """Real gunicorn (as `modelwatch serve` runs it) with a bad value: exit 1, no traceback."""
    from modelwatch.cli.serve import gunicorn_argv

    env = {
        "PATH": "/usr/bin:/bin",
        "MODELWATCH_WORKER_TIMEOUT": "a minute",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    done = subprocess.run(
        gunicorn_argv(1, 9, "127.0.0.1"), env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.strip() == "error: MODELWATCH_WORKER_TIMEOUT='a minute': not an integer"
