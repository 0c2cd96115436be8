"""Packaging: conda environment.yml and pyproject.toml name the same dependencies."""
import re
import tomllib

import yaml


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject(repo_root):
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]}
    env = yaml.safe_load((repo_root / "environment.yml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)} - {"python", "pip"}
    assert conda == wanted


def test_readme_starts_with_the_two_commands(repo_root):
    head = (repo_root / "README.md").read_text().split("##")[0:2]
    text = "##".join(head)
    assert "make run" in text and "make test" in text


def test_ci_calls_the_readme_test_command(repo_root):
    assert "make test" in (repo_root / ".ci" / "run").read_text()
