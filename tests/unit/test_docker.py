"""The image recipe, read as text (no Docker engine runs here, so the build itself is not run):
a builder stage makes the wheel from files that exist, the runtime installs only that wheel,
runs unprivileged and checks /health; compose passes only real settings; secrets stay out of git
and out of the build context."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from consentry.settings import CONFIG_VARIABLE, PREFIX, known_names

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "compose.yaml"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def stages() -> list[list[tuple[str, str]]]:
    split: list[list[tuple[str, str]]] = []
    for word, rest in instructions():
        if word == "FROM":
            split.append([])
        split[-1].append((word, rest))
    return split


def copy_sources() -> list[str]:
    """Sources of every COPY from the build context (not from another stage)."""
    sources = []
    for word, rest in instructions():
        if word == "COPY" and "--from=" not in rest:
            parts = [p for p in rest.split() if not p.startswith("--")]
            sources += parts[:-1]
    return sources


def test_every_copied_file_exists() -> None:
    """Each file or folder the Dockerfile copies from the context exists in the repository."""
    missing = [s for s in copy_sources() if not (ROOT / s).exists()]
    assert copy_sources() and not missing, missing


def test_builder_copies_what_the_wheel_build_needs() -> None:
    """pyproject.toml, its readme, the package folders and every folder a link in them points
    into are copied: the wheel holds the plugins and the default policy."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    where = project["tool"]["setuptools"]["packages"]["find"]["where"]
    needed = {"pyproject.toml", project["project"]["readme"], *where}
    for folder in where:
        for path in (ROOT / folder).rglob("*"):
            if path.is_symlink():
                needed.add(path.resolve().relative_to(ROOT).parts[0])
    copied = {s.rstrip("/").removeprefix("./") for s in copy_sources()}
    assert needed <= copied, f"not copied: {needed - copied}"


def test_multi_stage_runtime_installs_the_built_wheel() -> None:
    """A builder stage runs `pip wheel`; the last stage copies its wheels and installs them."""
    *builders, runtime = stages()
    assert builders, "a builder stage makes the wheel"
    assert any(w == "RUN" and "pip wheel" in r for stage in builders for w, r in stage)
    assert any(w == "COPY" and "--from=" in r for w, r in runtime)
    assert any(w == "RUN" and "pip install" in r and ".whl" in r for w, r in runtime)
    assert not any(w == "COPY" and "--from=" not in r for w, r in runtime), "no sources at run time"


def test_runtime_is_unprivileged() -> None:
    """The last stage switches to a user other than root before it starts the service."""
    runtime = stages()[-1]
    users = [r for w, r in runtime if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_runtime_checks_health() -> None:
    """The image has a HEALTHCHECK that asks /health, and starts `consentry serve`."""
    runtime = stages()[-1]
    [check] = [r for w, r in runtime if w == "HEALTHCHECK"]
    assert "/health" in check and "urllib" in check
    assert any(w == "CMD" and "consentry" in r and "serve" in r for w, r in runtime)


@pytest.mark.parametrize("path", ["docker/.env", "docker/secrets/kek", "data/consentry.sqlite"])
def test_secrets_are_ignored_by_git(path: str) -> None:
    """Files that hold secrets or data are git-ignored."""
    done = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False)
    assert done.returncode == 0, f"{path} is not git-ignored"


@pytest.mark.parametrize("entry", ["docker/.env", "docker/secrets", ".venv", "data", ".git"])
def test_build_context_leaves_out_secrets_and_local_files(entry: str) -> None:
    """.dockerignore keeps secrets, data and local environments out of the build context."""
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert entry in lines or entry + "/" in lines


def test_compose_passes_only_settings() -> None:
    """Each CONSENTRY_* variable compose sets is a setting (or its _FILE variant)."""
    service = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]["consentry"]
    known = {PREFIX + name.upper() for name in known_names()} | {CONFIG_VARIABLE}
    names = set(service["environment"])
    assert names and names <= known, names - known


def test_compose_mounts_every_secret_file_it_names() -> None:
    """Every *_FILE variable points at /run/secrets/<name> for a secret the service mounts."""
    spec = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    service = spec["services"]["consentry"]
    for variable, value in service["environment"].items():
        if variable.endswith("_FILE"):
            name = value.removeprefix("/run/secrets/")
            assert name in service["secrets"] and name in spec["secrets"], variable
