"""environment.yml, pyproject.toml and the pinned requirements must agree."""
import re
import tomllib

import yaml

from conftest import ROOT


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pins(path):
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            pins[_name(line)] = line
    return pins


def test_environment_yml_matches_pyproject_and_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    editable = [p for p in pip_section if p.startswith("-e")]
    assert editable, "environment.yml must install the project itself"
    extras = set(re.search(r"\[(.*)\]", editable[0]).group(1).split(","))
    assert extras == set(project["optional-dependencies"]), (
        f"environment.yml installs extras {sorted(extras)}, pyproject.toml defines "
        f"{sorted(project['optional-dependencies'])}")
    env_pins = {_name(p): p for p in pip_section if not p.startswith("-e")}
    cpu_pins = _pins(ROOT / "requirements" / "cpu.txt")
    assert env_pins == cpu_pins, "environment.yml pins differ from requirements/cpu.txt"
    declared = {_name(d) for d in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        declared |= {_name(d) for d in extra}
    assert set(env_pins) <= declared, (
        f"pinned but not declared in pyproject.toml: {sorted(set(env_pins) - declared)}")
    assert float(project["requires-python"].lstrip(">=")) <= 3.11
