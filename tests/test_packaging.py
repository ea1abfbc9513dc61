"""The install: pyproject.toml and environment.yml agree, and no CUDA wheels were installed."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0].lower()


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["test"]
    return {_name(r): r.replace(" ", "") for r in reqs}


def _environment_requirements() -> dict[str, str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    reqs = [line.strip()[2:] for line in lines[start + 1:] if line.strip().startswith("- ")]
    return {_name(r): r.replace(" ", "") for r in reqs if not r.startswith("-e")}


def test_environment_yml_matches_pyproject():
    py, env = _pyproject_requirements(), _environment_requirements()
    assert set(py) == set(env), f"only in pyproject: {set(py) - set(env)}; only in environment.yml: {set(env) - set(py)}"
    for name, spec in py.items():
        if name == "torch":  # conda's pip gets the exact CPU build the Makefile installs
            assert env[name] == "torch==2.13.0"
        else:
            assert env[name] == spec, f"{name}: pyproject says {spec!r}, environment.yml says {env[name]!r}"


def test_python_version_in_environment_yml():
    assert "python=3.11" in (ROOT / "environment.yml").read_text()


def test_no_cuda_wheels_installed():
    out = subprocess.run([sys.executable, "-m", "pip", "list", "--format=freeze"], capture_output=True,
                         text=True, check=True).stdout
    names = [line.split("==")[0].lower() for line in out.splitlines()]
    assert not [n for n in names if n.startswith("nvidia-")], "CUDA wheels were installed"
    import torch

    assert torch.version.cuda is None, f"torch {torch.__version__} is a CUDA build"


def test_makefile_installs_cpu_torch_first():
    text = (ROOT / "Makefile").read_text()
    torch_line = text.index("pip install --quiet torch==2.13.0")
    assert torch_line < text.index('pip install --quiet -e ".[test]"')


def test_readme_opens_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]
    assert [line.strip() for line in first_block.strip().splitlines()[-2:]] == ["make demo", "make test"]


def test_ci_runs_the_unit_tests_again_under_other_cpu_kernels():
    """A float compared exactly where another CPU sums in another order fails in CI, not for a user."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\nmake test\n" in ci and ci.index("\nmake test\n") < ci.index("\nmake test-kernels")
    make = (ROOT / "Makefile").read_text()
    target = make[make.index("\ntest-kernels:"):].split("\n\n")[0]
    assert "KERNELS := default " in make and "ATEN_CPU_CAPABILITY=$$cap" in target
    assert '-m "not slow and not browser"' in target and "--nbmake" not in target


def test_every_module_is_in_a_package_and_imports():
    """New modules (adafocus/pretrain.py, adafocus/data/images.py, ...) ship with the package: every
    folder of adafocus/ holding Python files is a package setuptools finds, and every module imports."""
    import importlib

    from setuptools import find_packages

    packages = set(find_packages(str(ROOT), include=["adafocus*"]))
    modules = sorted((ROOT / "adafocus").rglob("*.py"))
    folders = {p.parent.relative_to(ROOT).as_posix().replace("/", ".") for p in modules}
    assert folders <= packages, f"folders without __init__.py: {sorted(folders - packages)}"
    for path in modules:
        name = path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".").removesuffix(".__init__")
        if name != "adafocus.__main__":  # (runs the command line)
            importlib.import_module(name)
    for name in ("adafocus.pretrain", "adafocus.data.images", "adafocus.models.surrogates", "adafocus.data.batches"):
        assert name.replace(".", "/") + ".py" in {p.relative_to(ROOT).as_posix() for p in modules}


def test_pyproject_declares_the_test_markers_the_tests_use():
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    names = {m.split(":")[0] for m in markers}
    used = set()
    for path in (ROOT / "tests").glob("test_*.py"):
        used |= set(re.findall(r"@pytest\.mark\.(\w+)", path.read_text()))
    assert used - {"parametrize", "skipif", "xfail", "filterwarnings", "timeout"} <= names
