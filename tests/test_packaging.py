"""The conda environment and the package metadata must agree, or `conda env create` and
`pip install` give users different toolkits."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def test_every_runtime_dependency_is_in_environment_yml():
    conda = [d for d in _environment()["dependencies"] if isinstance(d, str)]
    conda_names = {_name(d) for d in conda}
    missing = [r for r in _pyproject()["project"]["dependencies"] if _name(r) not in conda_names]
    assert not missing, f"environment.yml lacks these pyproject dependencies: {missing}"


def test_environment_yml_pins_agree_with_pyproject():
    conda = {_name(d): d for d in _environment()["dependencies"] if isinstance(d, str)}
    for requirement in _pyproject()["project"]["dependencies"]:
        pin = re.search(r"(>=|==|~=)\s*([\w.]+)", requirement)
        if pin:
            assert pin.group(0).replace(" ", "") in conda[_name(requirement)].replace(" ", ""), (
                f"{requirement!r} in pyproject.toml but {conda[_name(requirement)]!r} in environment.yml"
            )


def test_environment_yml_installs_the_package_with_python_311_or_newer():
    deps = _environment()["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and _name(d) == "python")
    assert re.search(r">=\s*3\.(1[1-9]|[2-9]\d)", python), python
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert any(line.startswith("-e .") or line.startswith(".") for line in pip_section), pip_section
    assert _pyproject()["project"]["requires-python"] == ">=3.11"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci
