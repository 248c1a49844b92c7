"""The import contract (pyproject's [tool.importlinter]) checked, and the import graph drawn.

    python scripts/layers.py            # import-linter's verdict on every contract; exit 1 if broken
    python scripts/layers.py --graph    # modules, layers and the arrows between them

`training/`, `serving/` and `monitoring/` install as `modelwatch.*` (pyproject's
`package-dir`), but import-linter reads a package from one folder. So both run on a view of
the tree that has them in place: a temporary `modelwatch/` folder of links to the checkout's
files. The graph counts, for each layers contract, the imports that point from a lower layer
to a higher one (what the contract forbids) and how many modules each layer holds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = ("training", "serving", "monitoring")


def stage(into: Path) -> Path:
    """A `modelwatch` folder in `into` whose entries link to the installed package's folders."""
    package = into / "modelwatch"
    package.mkdir()
    for entry in (ROOT / "modelwatch").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for name in SUBPACKAGES:
        (package / name).symlink_to(ROOT / name)
    return into


def contracts() -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return config["contracts"]


def lint(path: Path) -> int:
    """import-linter's own command over the staged view (its modules come first on the path)."""
    env = {"PYTHONPATH": str(path), "PATH": str(Path(sys.executable).parent)}
    command = [str(Path(sys.executable).parent / "lint-imports"), str(ROOT / "pyproject.toml")]
    return subprocess.run(command, cwd=path, env=env, check=False).returncode


def layer_of(module: str, layers: list[list[str]]) -> int | None:
    for index, names in enumerate(layers):
        if any(module == n or module.startswith(n + ".") for n in names):
            return index
    return None


def graph(path: Path) -> dict:
    """Per layers contract: its layers' module counts and the arrows between layers."""
    sys.path.insert(0, str(path))
    import grimp  # noqa: PLC0415 (a test tool: only this command needs it)

    g = grimp.build_graph("modelwatch", cache_dir=None)
    found = {"modules": len(g.modules), "contracts": []}
    for contract in contracts():
        if contract["type"] != "layers":
            continue
        containers = contract.get("containers", [""])
        for container in containers:
            prefix = f"{container}." if container else ""
            layers = [
                [prefix + n.strip().strip("()") for n in line.replace(":", "|").split("|")]
                for line in contract["layers"]
            ]
            arrows = Counter()
            for module in g.modules:
                source = layer_of(module, layers)
                if source is None:
                    continue
                for imported in g.find_modules_directly_imported_by(module):
                    target = layer_of(imported, layers)
                    if target is not None and target != source:
                        arrows["up" if target < source else "down"] += 1
            sizes = [sum(layer_of(m, layers) == i for m in g.modules) for i in range(len(layers))]
            found["contracts"].append(
                {
                    "name": contract["name"],
                    "layers": [" | ".join(names) for names in layers],
                    "modules per layer": sizes,
                    "arrows down": arrows["down"],
                    "arrows that point up": arrows["up"],
                }
            )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", action="store_true", help="print the layers' graph")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="modelwatch-layers-") as tmp:
        path = stage(Path(tmp))
        if not args.graph:
            return lint(path)
        found = graph(path)
    print(f"modules: {found['modules']}")
    for contract in found["contracts"]:
        print(f"\n{contract['name']}")
        for layer, size in zip(contract["layers"], contract["modules per layer"], strict=True):
            print(f"  {size:3d}  {layer}")
        print(
            f"  arrows down: {contract['arrows down']}, arrows that point up: {contract['arrows that point up']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
