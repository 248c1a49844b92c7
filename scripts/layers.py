"""The import contract (pyproject's [tool.importlinter]) checked, and the import graph drawn.

    python scripts/layers.py            # import-linter's verdict; exit 1 if a contract is broken
    python scripts/layers.py --graph    # modules, layers and the arrows between them
    python scripts/layers.py --graph --root OTHER_CHECKOUT --contracts CONTRACTS.toml

`training/`, `serving/` and `monitoring/` install as `modelwatch.*` (pyproject's
`package-dir`), but import-linter reads a package from one folder. So both run on a view of
the tree that has them in place: a temporary `modelwatch/` folder of links to the checkout's
files. The graph counts, for each layers contract, how many modules each layer holds and the
imports between its layers: down (allowed), up (forbidden) and across siblings that the
contract calls independent (`a | b`; forbidden). `--root` and `--contracts` measure another
checkout (an older commit, say) against contracts written for its module names.
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


def stage(into: Path, root: Path = ROOT) -> Path:
    """A `modelwatch` folder in `into` whose entries link to the checkout's package folders."""
    package = into / "modelwatch"
    package.mkdir()
    for entry in (root / "modelwatch").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for name in SUBPACKAGES:
        (package / name).symlink_to(root / name)
    return into


def contracts(path: Path) -> list[dict]:
    return tomllib.loads(path.read_text())["tool"]["importlinter"]["contracts"]


def lint(path: Path) -> int:
    """import-linter's own command over the staged view (its modules come first on the path)."""
    env = {"PYTHONPATH": str(path), "PATH": str(Path(sys.executable).parent)}
    command = [str(Path(sys.executable).parent / "lint-imports"), str(ROOT / "pyproject.toml")]
    return subprocess.run(command, cwd=path, env=env, check=False).returncode


def place(module: str, layers: list[list[str]]) -> tuple[int, str] | None:
    """(layer, sibling) of the module: the longest name in the layers that holds it."""
    found = [
        (len(name), index, name)
        for index, names in enumerate(layers)
        for name in names
        if module == name or module.startswith(name + ".")
    ]
    return max(found)[1:] if found else None


def parse_layers(contract: dict, container: str) -> tuple[list[list[str]], list[bool]]:
    """Each layer's module names, and whether its siblings are independent (`|`)."""
    prefix = f"{container}." if container else ""
    names = [line.replace(":", "|").split("|") for line in contract["layers"]]
    layers = [[prefix + n.strip().strip("()") for n in line] for line in names]
    return layers, ["|" in line for line in contract["layers"]]


def arrows(g, layers: list[list[str]], independent: list[bool]) -> Counter:
    counted = Counter()
    for module in g.modules:
        source = place(module, layers)
        for imported in g.find_modules_directly_imported_by(module) if source else ():
            target = place(imported, layers)
            if target is None or target == source:
                continue
            if target[0] == source[0]:
                counted["across"] += independent[source[0]]
            else:
                counted["up" if target[0] < source[0] else "down"] += 1
    return counted


def graph(path: Path, contracts_file: Path) -> dict:
    """Per layers contract: its layers' module counts and the arrows between them."""
    sys.path.insert(0, str(path))
    import grimp  # noqa: PLC0415 (a test tool: only this command needs it)

    g = grimp.build_graph("modelwatch", cache_dir=None)
    found = {"modules": len(g.modules), "contracts": []}
    for contract in contracts(contracts_file):
        for container in contract.get("containers", [""]) if contract["type"] == "layers" else ():
            layers, independent = parse_layers(contract, container)
            places = [place(m, layers) for m in g.modules]
            found["contracts"].append(
                {
                    "name": contract["name"],
                    "layers": [f"{container} {line}".strip() for line in contract["layers"]],
                    "modules per layer": [
                        sum(1 for p in places if p and p[0] == i) for i in range(len(layers))
                    ],
                    "arrows": arrows(g, layers, independent),
                }
            )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", action="store_true", help="print the layers' graph")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to measure")
    parser.add_argument("--contracts", type=Path, default=ROOT / "pyproject.toml")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="modelwatch-layers-") as tmp:
        path = stage(Path(tmp), args.root.resolve())
        if not args.graph:
            return lint(path)
        found = graph(path, args.contracts)
    print(f"modules: {found['modules']}")
    for contract in found["contracts"]:
        print(f"\n{contract['name']}")
        for layer, size in zip(contract["layers"], contract["modules per layer"], strict=True):
            print(f"  {size:3d}  {layer}")
        counted = contract["arrows"]
        print(
            f"  arrows down: {counted['down']}, that point up: {counted['up']}, "
            f"across independent siblings: {counted['across']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
