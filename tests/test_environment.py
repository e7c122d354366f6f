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


PROJECTS = {".": ROOT / "pyproject.toml", "./instructor": ROOT / "instructor" / "pyproject.toml"}


def test_environment_yml_matches_both_pyprojects_and_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    editable = {re.match(r"-e (\S+?)\[", p).group(1): p for p in pip_section if p.startswith("-e")}
    assert set(editable) == set(PROJECTS), (
        f"environment.yml must install both packages ({sorted(PROJECTS)}), found {sorted(editable)}")
    declared = set()
    for where, path in PROJECTS.items():
        project = tomllib.loads(path.read_text())["project"]
        extras = set(re.search(r"\[(.*)\]", editable[where]).group(1).split(","))
        assert extras == set(project["optional-dependencies"]), (
            f"environment.yml installs {where} with extras {sorted(extras)}, {path.relative_to(ROOT)} "
            f"defines {sorted(project['optional-dependencies'])}")
        declared |= {_name(d) for d in project["dependencies"]}
        for extra in project["optional-dependencies"].values():
            declared |= {_name(d) for d in extra}
        assert float(project["requires-python"].lstrip(">=")) <= 3.11
    env_pins = {_name(p): p for p in pip_section if not p.startswith("-")}   # not -e, --index
    cpu_pins = _pins(ROOT / "requirements" / "cpu.txt")
    assert env_pins == cpu_pins, "environment.yml pins differ from requirements/cpu.txt"
    assert set(env_pins) <= declared, (
        f"pinned but not declared in either pyproject.toml: {sorted(set(env_pins) - declared)}")


def test_the_student_package_needs_no_nbgrader():
    student = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {_name(d) for d in student["dependencies"]}
    for extra in student["optional-dependencies"].values():
        names |= {_name(d) for d in extra}
    assert "nbgrader" not in names and "workbook-instructor" not in names
