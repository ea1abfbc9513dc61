"""The import graph of ``adafocus/`` flows one way, and only ``adafocus/models/`` touches a model's private parts.

Every module is parsed (nothing is imported), function-level imports included. The floors, lowest
first (docs/design.md, "The method" names the rooms):

    config -> data, models -> train, evaluate, costs -> analysis, benchmark -> viz, figures -> cli

A module may import its own floor or a lower one, never a higher one; and no two modules may import
each other, directly or through others.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "adafocus"

# module (or package prefix) -> floor; the longest matching prefix wins, "adafocus" itself only exactly
FLOORS: dict[str, int] = {
    # 0 -- config and the plain utilities it stands on
    "adafocus": 0, "adafocus.config": 0, "adafocus.checks": 0, "adafocus.paths": 0, "adafocus.distributed": 0,
    "adafocus.jobs": 0,
    # 1 -- data and models
    "adafocus.data": 1, "adafocus.models": 1,
    # 2 -- training, evaluation and costs (policy metrics: the box and frame scores evaluate reports)
    "adafocus.train": 2, "adafocus.train_v1": 2, "adafocus.ppo": 2, "adafocus.pretrain": 2, "adafocus.pretrain_x3d": 2, "adafocus.fit": 2, "adafocus.losses": 2, "adafocus.evaluate": 2, "adafocus.flops": 2,
    "adafocus.analysis.policy_metrics": 2,
    # 3 -- analysis and the benchmark
    "adafocus.analysis": 3, "adafocus.benchmark": 3, "adafocus.family": 3,
    # 4 -- pictures
    "adafocus.viz": 4, "adafocus.figures": 4, "adafocus.data.preview": 4,  # the preview draws (palette, filmstrip)
    # 5 -- entry points
    "adafocus.cli": 5, "adafocus.demo": 5, "adafocus.__main__": 5, "adafocus.notebook": 5,
}
# names a model object goes by outside adafocus/models/ (``self.model`` and ``fixed.model`` included)
MODEL_NAMES = {"model", "net", "network", "uni", "adafocus_model"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@lru_cache(maxsize=None)
def modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@lru_cache(maxsize=None)
def tree(name: str) -> ast.Module:
    path = modules()[name]
    return ast.parse(path.read_text(), filename=str(path))


def imports_of(name: str) -> set[str]:
    """The ``adafocus`` modules ``name`` imports anywhere in its body (``from pkg import mod`` counts as ``pkg.mod``)."""
    known, found = modules(), set()
    is_package = modules()[name].name == "__init__.py"
    for node in ast.walk(tree(name)):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package this module is in
                package = name.split(".")[: len(name.split(".")) - node.level + is_package]
                base = ".".join(package + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def floor(name: str) -> int:
    matches = [p for p in FLOORS if name == p or (p != "adafocus" and name.startswith(p + "."))]
    if not matches:
        raise KeyError(name)
    return FLOORS[max(matches, key=len)]


def test_every_module_has_a_floor():
    missing = [m for m in modules() if not any(m == p or (p != "adafocus" and m.startswith(p + ".")) for p in FLOORS)]
    assert not missing, f"add these modules to FLOORS in {Path(__file__).name}: {missing}"


def test_no_import_cycle():
    graph = {m: imports_of(m) for m in modules()}
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    cycles: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(path[path.index(n):] + [n])
            elif n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_imports_flow_down_the_floors():
    upward = [f"{m} (floor {floor(m)}) imports {n} (floor {floor(n)})"
              for m in modules() for n in sorted(imports_of(m)) if floor(n) > floor(m)]
    assert not upward, "a lower floor imports a higher one:\n" + "\n".join(upward)


def _model_root(node: ast.expr) -> bool:
    """Whether ``node`` is a model object: ``model``, ``net``, ... or ``<anything>.model``."""
    if isinstance(node, ast.Name):
        return node.id in MODEL_NAMES
    return isinstance(node, ast.Attribute) and node.attr in MODEL_NAMES


def private_model_accesses(module: ast.Module) -> list[ast.Attribute]:
    """``model._x``, ``self.model._x``, ``model.classifier._x``, ... in a parsed module (dunders allowed)."""
    found = []
    for node in ast.walk(module):
        if not (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")):
            continue
        base = node.value
        while isinstance(base, ast.Attribute) and not _model_root(base):
            base = base.value  # model.classifier._x: walk down to the model
        if _model_root(base):
            found.append(node)
    return found


def test_only_models_touch_private_members_of_a_model():
    outside = [m for m in modules() if not (m == "adafocus.models" or m.startswith("adafocus.models."))]
    found = [f"{modules()[m].relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}"
             for m in outside for node in private_model_accesses(tree(m))]
    assert not found, "private members of a model used outside adafocus/models/:\n" + "\n".join(found)


def test_the_private_access_check_catches_what_it_should():
    source = ("def f(model, self, net, x):\n"
              "    model._modes(); self.model._to_2d_input(x); net.classifier._check(x)\n"
              "    model.__class__; x._private; model.public; self._cache\n")
    found = sorted(ast.unparse(n) for n in private_model_accesses(ast.parse(source)))
    assert found == ["model._modes", "net.classifier._check", "self.model._to_2d_input"]


def test_the_parser_sees_function_level_and_package_imports():
    assert {"adafocus.models.exits", "adafocus.flops"} <= imports_of("adafocus.analysis.early_exit")
    assert "adafocus.distributed" in imports_of("adafocus.data.batches")  # from adafocus import distributed
    assert "adafocus.models.registry" in imports_of("adafocus.flops")  # inside model_cost
    assert "adafocus.evaluate" not in imports_of("adafocus.flops")
