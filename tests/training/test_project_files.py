"""The environment files agree with the pins a fresh machine installs."""

import tomllib
from pathlib import Path

import yaml

from modelwatch.cli import TRAIN_PARAMS

ROOT = Path(__file__).resolve().parents[2]


def _pins(lines):
    return {
        line.split("==")[0].split("[")[0].lower().replace("_", "-"): line.split("==")[1]
        for line in lines
        if "==" in line
    }


def test_every_pin_agrees_with_the_lock():
    project = _pins(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    lock = _pins(
        line.strip()
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if not line.startswith("#")
    )
    python_env = _pins(yaml.safe_load((ROOT / "python_env.yaml").read_text())["dependencies"])
    conda = yaml.safe_load((ROOT / "conda.yaml").read_text())["dependencies"]
    conda_pins = _pins(next(d for d in conda if isinstance(d, dict))["pip"])
    assert project == python_env == conda_pins
    for name, version in project.items():
        assert lock.get(name) == version, f"{name}: pyproject {version}, lock {lock.get(name)}"
    assert lock["pandas"].startswith("2."), "evidently 0.7.23 cannot import with pandas 3"


def test_mlproject_entry_points_take_the_documented_parameters():
    project = yaml.safe_load((ROOT / "MLproject").read_text())
    main = project["entry_points"]["main"]["parameters"]
    assert {"data", "target", "model_name", "model_type", "n_rows", "seed", "promote"} <= set(main)
    assert main["target"]["default"] == "defaulted" and main["n_rows"]["default"] == 20000
    assert (
        main["task"]["default"] == "auto"
        and main["segments"]["default"] == main["sensitive"]["default"] == ""
    )
    for name in main:
        assert "{" + name + "}" in project["entry_points"]["main"]["command"]
    # `modelwatch train --flag` reaches every one of them
    assert set(TRAIN_PARAMS) == set(main)
