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
