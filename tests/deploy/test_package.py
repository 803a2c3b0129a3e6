"""Deployment packages, built the way `sam build` builds them, checked offline.

Each resource of template.yaml with `BuildMethod: makefile` is built by `make build-<LogicalId>` with
ARTIFACTS_DIR set, in a scratch copy of the repository (as `sam build` runs it; the copy has no
.venv, so the targets cannot lean on the virtualenv). A function's artifact must hold exactly
functions/__init__.py, its own package (from its Handler) and shared/, as Python sources; its
handler must import from the artifact and the runtime requirements alone (requirements.txt and
what they require), with nothing but the standard library besides. The layer must hold exactly
those requirements, built for python3.13 on arm64, and a function with the layer must stay within
Lambda's 250 MiB. The checks are functions returning problems, so the tests at the end can show
that each one catches what it is for.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from local.package import LAMBDA_UNZIPPED_LIMIT, Buildable, build, files_of, makefile_builds, zip_directory
from local.stack.template import REPO_ROOT, load_template

BUILDS = makefile_builds(load_template())
FUNCTIONS = [item for item in BUILDS if not item.is_layer]
LAYERS = [item for item in BUILDS if item.is_layer]

FUNCTION_MAX_BYTES = 2_000_000  # unzipped; the code alone is about 0.2 MB
FUNCTION_BUILD_MAX_SECONDS = 5.0  # about 0.05 s: a copy, never an install
# Not copied into sam build's scratch folder (SAM skips .aws-sam and .git), or only caches.
SCRATCH_EXCLUDES = {".git", ".aws-sam", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis"}
# Modules that are in 3.11's standard library but not in 3.13's, the runtime (PEP 594, PEP 632, 3.12).
REMOVED_BY_313 = {
    "aifc", "asynchat", "asyncore", "audioop", "cgi", "cgitb", "chunk", "crypt", "distutils", "imghdr", "imp",
    "lib2to3", "mailcap", "msilib", "nis", "nntplib", "ossaudiodev", "pipes", "smtpd", "sndhdr", "spwd", "sunau",
    "telnetlib", "uu", "xdrlib",
}  # fmt: skip
# Where the Lambda runtime evaluates environment markers: CPython 3.13 on Linux, arm64.
LAMBDA_MARKERS = {
    **default_environment(),
    "implementation_name": "cpython",
    "implementation_version": "3.13.0",
    "os_name": "posix",
    "platform_machine": "aarch64",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "python_full_version": "3.13.0",
    "python_version": "3.13",
    "sys_platform": "linux",
}
ELF_MACHINE_AARCH64 = 183


# ---- requirements ------------------------------------------------------------------------------


def read_pins(path: Path) -> dict[str, Requirement]:
    """A requirements file's pins by canonical name; every line must be `name[extras]==version`."""
    pins = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            if path.name == "requirements-dev.txt" and line == "-r requirements.txt":
                continue
            raise AssertionError(f"{path.name}:{number}: options are not understood here: {line!r}")
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1, f"{path.name}:{number}: not pinned: {line!r}"
        assert specifiers[0].operator == "==", f"{path.name}:{number}: not pinned: {line!r}"
        pins[canonicalize_name(requirement.name)] = requirement
    return pins


RUNTIME_PINS = read_pins(REPO_ROOT / "requirements.txt")
DEV_PINS = read_pins(REPO_ROOT / "requirements-dev.txt")


def pinned_version(requirement: Requirement) -> str:
    return next(iter(requirement.specifier)).version


def requirement_closure(
    pins: Mapping[str, Requirement], find: Callable[[str], metadata.Distribution | None], markers: Mapping[str, str]
) -> dict[str, metadata.Distribution]:
    """The distributions `pins` need, transitively, by canonical name (Requires-Dist, markers and extras)."""
    found: dict[str, metadata.Distribution] = {}
    extras_seen: dict[str, set[str]] = {}
    queue = list(pins.values())
    while queue:
        requirement = queue.pop()
        name = canonicalize_name(requirement.name)
        extras = {canonicalize_name(extra) for extra in requirement.extras}
        if name in extras_seen and extras <= extras_seen[name]:
            continue
        extras_seen.setdefault(name, set()).update(extras)
        distribution = find(name)
        assert distribution is not None, f"{name} is required (by {requirement}) but not installed"
        found[name] = distribution
        for text in distribution.requires or []:
            needed = Requirement(text)
            if needed.marker is None or any(
                needed.marker.evaluate({**markers, "extra": extra}) for extra in {"", *extras_seen[name]}
            ):
                queue.append(needed)
    return found


def venv_distribution(name: str) -> metadata.Distribution | None:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None


def top_level_names(distribution: metadata.Distribution) -> set[str]:
    """The importable top-level names a distribution installs (its files' first path parts)."""
    names = set()
    for file in distribution.files or []:
        first = file.parts[0]
        if first.startswith("..") or first.endswith((".dist-info", ".data")) or first == "__pycache__":
            continue
        names.add(first.removesuffix(".py").split(".")[0])
    return names


# ---- building ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def scratch_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository as `sam build` copies it into its scratch folder, with a few files the
    Makefile must leave out planted in the packaged folders."""
    source = tmp_path_factory.mktemp("sam-scratch") / "source"

    def ignore(directory: str, names: list[str]) -> set[str]:
        return SCRATCH_EXCLUDES & set(names) if Path(directory) == REPO_ROOT else set()

    shutil.copytree(REPO_ROOT, source, symlinks=True, ignore=ignore)
    for folder in [source / "shared", *(source / "functions" / str(item.package) for item in FUNCTIONS)]:
        (folder / "__pycache__").mkdir(exist_ok=True)
        (folder / "__pycache__" / "planted.cpython-313.pyc").write_bytes(b"not packaged")
        (folder / "planted-notes.txt").write_text("not packaged\n", encoding="utf-8")
    return source


def sam_build(logical_id: str, artifacts_dir: Path, scratch: Path) -> float:
    """`make build-<logical_id>` as sam build runs it (the repository's Makefile, in the scratch copy);
    the seconds it took."""
    started = time.perf_counter()
    build(logical_id, artifacts_dir, source_dir=scratch, makefile=REPO_ROOT / "Makefile")
    return time.perf_counter() - started


@dataclass(frozen=True)
class FunctionArtifact:
    item: Buildable
    path: Path
    build_seconds: float

    @property
    def package(self) -> str:
        assert self.item.package is not None
        return self.item.package

    @property
    def handler_module(self) -> str:
        return f"functions.{self.package}.app"


@pytest.fixture(scope="session")
def function_artifacts(tmp_path_factory: pytest.TempPathFactory, scratch_source: Path) -> dict[str, FunctionArtifact]:
    root = tmp_path_factory.mktemp("functions")
    artifacts = {}
    for item in FUNCTIONS:
        path = root / item.logical_id
        seconds = sam_build(item.logical_id, path, scratch_source)
        artifacts[item.logical_id] = FunctionArtifact(item, path, seconds)
    return artifacts


def relative_files(directory: Path) -> set[str]:
    return {path.relative_to(directory).as_posix() for path in files_of(directory)}


def unzipped_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in files_of(directory))


# ---- (a) what a function's artifact holds ------------------------------------------------------


def expected_function_files(package: str) -> set[str]:
    """functions/__init__.py, functions/<package>/ and shared/: their .py files, in the repository."""
    files = {"functions/__init__.py"}
    for folder in (REPO_ROOT / "functions" / package, REPO_ROOT / "shared"):
        files |= {
            path.relative_to(REPO_ROOT).as_posix()
            for path in folder.rglob("*.py")
            if path.is_file() and "__pycache__" not in path.parts
        }
    return files


def content_problems(artifact: Path, package: str) -> list[str]:
    """What is wrong with a function artifact's files (nothing: an empty list)."""
    actual = relative_files(artifact)
    expected = expected_function_files(package)
    problems = []
    for name in sorted(actual - expected):
        parts = name.split("/")
        if parts[0] not in ("functions", "shared"):
            reason = f"{parts[0]}/ is not deployed" if len(parts) > 1 else "not deployed"
        elif parts[0] == "functions" and len(parts) > 2 and parts[1] != package:
            reason = f"another function's package ({parts[1]})"
        elif "__pycache__" in parts or not name.endswith(".py"):
            reason = "not a Python source"
        else:
            reason = "not in the repository"
        problems.append(f"unexpected {name}: {reason}")
    problems += [f"missing {name}" for name in sorted(expected - actual)]
    return problems


@pytest.mark.parametrize("logical_id", [item.logical_id for item in FUNCTIONS])
def test_function_artifact_holds_only_its_package_and_shared(
    function_artifacts: dict[str, FunctionArtifact], logical_id: str
) -> None:
    artifact = function_artifacts[logical_id]
    # Given the function built by `make build-<LogicalId>` (planted __pycache__ and .txt files in the source)
    # Then it holds functions/__init__.py, its package and shared/ as .py files, nothing else
    assert content_problems(artifact.path, artifact.package) == []
    top = {path.name for path in artifact.path.iterdir()}
    assert top == {"functions", "shared"}
    packages = {path.name for path in (artifact.path / "functions").iterdir() if path.is_dir()}
    assert packages == {artifact.package}


def test_every_template_function_is_built_from_its_handler() -> None:
    # The Makefile reads the packages from template.yaml: each function's Handler names one
    handlers = {item.logical_id: item.package for item in FUNCTIONS}
    assert handlers, "no function with BuildMethod: makefile in template.yaml"
    for logical_id, package in handlers.items():
        assert (REPO_ROOT / "functions" / str(package) / "app.py").is_file(), logical_id
    # and every function has the one makefile-built layer, the one checked below
    assert len(LAYERS) == 1
    layers = ((load_template().get("Globals") or {}).get("Function") or {}).get("Layers") or []
    assert {"Ref": LAYERS[0].logical_id} in layers


# ---- (b) the handler imports from the artifact and the requirements alone ----------------------

# Run with `python -I -S`: no site-packages, no environment variables for Python, no current folder.
_IMPORT_PROBE = r"""
import importlib, json, sys, traceback
artifact, requirements, module, pycache = sys.argv[1:5]
stdlib_paths = list(sys.path)
sys.pycache_prefix = pycache  # nothing written into the artifact or the requirements
sys.path[:0] = [artifact, requirements]
try:
    handler = getattr(importlib.import_module(module), "lambda_handler", None)
except BaseException as error:
    lines = traceback.format_exception(error)
    print(json.dumps({"error": f"{type(error).__name__}: {error}", "traceback": "".join(lines[-6:])}))
    raise SystemExit(0)
modules = {
    name: {
        "file": getattr(value, "__file__", None),
        "origin": getattr(getattr(value, "__spec__", None), "origin", None),
        "paths": [str(path) for path in (getattr(value, "__path__", None) or [])],
    }
    for name, value in list(sys.modules.items())
}
print(json.dumps({"handler": callable(handler), "stdlib_paths": stdlib_paths, "modules": modules}))
"""


@dataclass(frozen=True)
class Runtime:
    """What a function finds in Lambda besides its artifact: the requirements (the layer) and the stdlib."""

    distributions: dict[str, metadata.Distribution]  # requirements.txt and what it needs, from the venv
    site: Path  # those distributions' files only, linked from the venv's site-packages
    pycache: Path


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    distributions = requirement_closure(RUNTIME_PINS, venv_distribution, default_environment())
    for name, requirement in RUNTIME_PINS.items():
        installed = distributions[name].version
        assert installed == pinned_version(requirement), f"the venv has {name} {installed}: run make install"
    site = tmp_path_factory.mktemp("requirements-site")
    for name, distribution in distributions.items():
        assert distribution.files is not None, f"{name} has no RECORD"
        for file in distribution.files:
            if file.parts[0].startswith("..") or "__pycache__" in file.parts:
                continue
            source = Path(str(distribution.locate_file(file)))
            target = site / file
            if source.is_file() and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(source)
    return Runtime(distributions, site, tmp_path_factory.mktemp("pycache"))


def lambda_environment(logical_id: str, artifact: Path) -> dict[str, str]:
    """The variables Lambda sets (enough to look like it: Powertools enables its tracer), plus the
    template's plain global ones."""
    template = load_template()
    variables = ((template.get("Globals") or {}).get("Function") or {}).get("Environment", {}).get("Variables", {})
    environment = {name: value for name, value in variables.items() if isinstance(value, str)}
    return {
        **environment,
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "LAMBDA_TASK_ROOT": str(artifact),
        "AWS_LAMBDA_FUNCTION_NAME": logical_id,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def _under(location: str, folder: Path | str) -> bool:
    return Path(location).is_relative_to(folder)


def _locations(info: Mapping[str, Any]) -> list[str]:
    """Where a module was loaded from: its file (or origin) and package folders; none if built in."""
    candidates = [info["file"] or info["origin"], *info["paths"]]
    return [str(location) for location in candidates if location and os.path.isabs(str(location))]


# Modules that no file backs, made at run time: multiprocessing's alias of __main__, Cython's
# bookkeeping (charset_normalizer's binaries are Cython).
_RUNTIME_MADE = re.compile(r"__main__|__mp_main__|cython_runtime|_cython_\d+_\d+_\d+")


def module_problem(
    name: str, modules: Mapping[str, Mapping[str, Any]], artifact: Path, site: Path, stdlib: Iterable[str]
) -> str | None:
    """Why a module loaded by the handler's import could not be there in Lambda (None: it could)."""
    top = name.split(".")[0]
    if top in REMOVED_BY_313:
        return f"{name}: not in Python 3.13's standard library (the runtime)"
    locations = _locations(modules[name])
    if not locations:
        if top in sys.stdlib_module_names or name in sys.builtin_module_names or _RUNTIME_MADE.fullmatch(name):
            return None
        if top != name and top in modules and all(_under(where, site) for where in _locations(modules[top]) or ["?"]):
            return None  # made by its package, a requirement (six.moves)
        return f"{name}: neither in the artifact, nor a requirement, nor the standard library"
    for location in locations:
        in_stdlib = (
            any(_under(location, folder) for folder in stdlib)
            and not {"site-packages", "dist-packages"} & set(Path(location).parts)
            and (top in sys.stdlib_module_names or top.startswith("_sysconfigdata_"))
        )
        if _under(location, artifact) and top not in ("functions", "shared"):
            return f"{name}: from the artifact but outside functions/ and shared/ ({location})"
        if not (_under(location, artifact) or _under(location, site) or in_stdlib):
            return f"{name}: loaded from {location}, which is neither the artifact, a requirement nor the stdlib"
    return None


def import_problems(artifact: Path, module: str, logical_id: str, runtime: Runtime) -> list[str]:
    """Import `module` (and its lambda_handler) with only the artifact, the requirements and the stdlib
    on sys.path, in a fresh interpreter; what would break or differ in Lambda."""
    command = [
        sys.executable,
        "-I",
        "-S",
        "-c",
        _IMPORT_PROBE,
        str(artifact),
        str(runtime.site),
        module,
        str(runtime.pycache),
    ]
    completed = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        command,
        cwd=runtime.pycache,
        env=lambda_environment(logical_id, artifact),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    if "error" in report:
        return [f"importing {module} failed: {report['error']}\n{report['traceback']}"]
    problems = [] if report["handler"] else [f"{module}.lambda_handler is not a function"]
    for name in sorted(report["modules"]):
        problem = module_problem(name, report["modules"], artifact, runtime.site, report["stdlib_paths"])
        if problem:
            problems.append(problem)
    return problems


@pytest.mark.parametrize("logical_id", [item.logical_id for item in FUNCTIONS])
def test_handler_imports_from_artifact_and_requirements_alone(
    function_artifacts: dict[str, FunctionArtifact], runtime: Runtime, logical_id: str
) -> None:
    artifact = function_artifacts[logical_id]
    # Given the artifact and requirements.txt's distributions (with theirs), as in Lambda
    # When a fresh interpreter imports the handler with nothing else on its path
    problems = import_problems(artifact.path, artifact.handler_module, logical_id, runtime)
    # Then it imports, and every module it loaded is the artifact's, a requirement's or the stdlib's
    assert problems == []


# ---- (c) sizes and speed -----------------------------------------------------------------------


@pytest.mark.parametrize("logical_id", [item.logical_id for item in FUNCTIONS])
def test_function_artifact_is_small_and_quick_to_build(
    function_artifacts: dict[str, FunctionArtifact], tmp_path: Path, logical_id: str
) -> None:
    artifact = function_artifacts[logical_id]
    sizes = zip_directory(artifact.path, tmp_path / f"{logical_id}.zip")
    print(
        f"\n{logical_id}: {sizes.files} files, {sizes.unzipped_bytes:,} bytes unzipped, "
        f"{sizes.zipped_bytes:,} zipped, built in {artifact.build_seconds:.3f} s"
    )
    assert sizes.unzipped_bytes < FUNCTION_MAX_BYTES
    assert artifact.build_seconds < FUNCTION_BUILD_MAX_SECONDS


# ---- the dependencies layer (needs PyPI) -------------------------------------------------------


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory, scratch_source: Path) -> Path:
    """DependenciesLayer built once, as sam build builds it (pip, for the Lambda platform)."""
    (item,) = LAYERS
    artifact = tmp_path_factory.mktemp("layer") / item.logical_id
    seconds = sam_build(item.logical_id, artifact, scratch_source)
    print(f"\n{item.logical_id} built in {seconds:.1f} s")
    return artifact


def layer_distributions(layer: Path) -> dict[str, metadata.Distribution]:
    found: dict[str, metadata.Distribution] = {}
    for distribution in metadata.distributions(path=[str(layer / "python")]):
        name = canonicalize_name(distribution.metadata["Name"])
        assert name not in found, f"{name} installed twice in the layer"
        found[name] = distribution
    return found


def layer_problems(layer: Path) -> list[str]:
    """What is wrong with the layer: its distributions, files and binaries."""
    problems = []
    top = sorted(path.name for path in layer.iterdir())
    if top != ["python"]:
        problems.append(f"the layer's top level is {top}, not python/ alone")
    installed = layer_distributions(layer)
    needed = requirement_closure(RUNTIME_PINS, installed.get, LAMBDA_MARKERS)
    for name, requirement in RUNTIME_PINS.items():
        if installed[name].version != pinned_version(requirement):
            problems.append(f"{name} {installed[name].version}, not the pinned {pinned_version(requirement)}")
    problems += [
        f"{name}: in the layer, not required by requirements.txt" for name in sorted(set(installed) - set(needed))
    ]
    dev_only = set(DEV_PINS) - set(needed)
    problems += [f"{name}: a development package in the layer" for name in sorted(dev_only & set(installed))]
    dev_modules = set().union(*(top_level_names(d) for n in dev_only if (d := venv_distribution(n)) is not None))
    present = {path.name.removesuffix(".py") for path in (layer / "python").iterdir()}
    problems += [f"{name}: a development package's module in the layer" for name in sorted(dev_modules & present)]
    recorded = {
        (layer / "python" / file).as_posix() for distribution in installed.values() for file in distribution.files or []
    }
    for path in files_of(layer):
        if "__pycache__" in path.parts or path.suffix == ".pyc":
            problems.append(f"compiled bytecode: {path.relative_to(layer)}")
        elif path.as_posix() not in recorded:
            problems.append(f"{path.relative_to(layer)}: not installed by any requirement")
        elif ".so" in path.suffixes and not is_aarch64_elf(path):
            problems.append(f"{path.relative_to(layer)}: not an arm64 (aarch64) binary")
    cores = sorted((layer / "python" / "pydantic_core").glob("_pydantic_core*.so"))
    if [path.name for path in cores] != ["_pydantic_core.cpython-313-aarch64-linux-gnu.so"]:
        problems.append(f"pydantic_core's binary is {[path.name for path in cores]}, not for cp313 on aarch64")
    return problems


def is_aarch64_elf(path: Path) -> bool:
    header = path.read_bytes()[:20]
    return header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == ELF_MACHINE_AARCH64


def test_layer_holds_exactly_the_pinned_requirements_for_python313_arm64(layer: Path) -> None:
    # Given the layer built by `make build-DependenciesLayer`
    # Then it holds requirements.txt's pins and what they need on python3.13/arm64, nothing else
    assert layer_problems(layer) == []
    assert "boto3" in layer_distributions(layer)


def test_function_with_layer_fits_lambda(
    layer: Path, function_artifacts: dict[str, FunctionArtifact], tmp_path: Path
) -> None:
    layer_sizes = zip_directory(layer, tmp_path / "layer.zip")
    print(
        f"\nlayer: {layer_sizes.files} files, {layer_sizes.unzipped_bytes:,} bytes unzipped, "
        f"{layer_sizes.zipped_bytes:,} zipped"
    )
    for logical_id, artifact in function_artifacts.items():
        total = unzipped_bytes(artifact.path) + layer_sizes.unzipped_bytes
        print(f"{logical_id} + layer: {total:,} bytes unzipped ({total / LAMBDA_UNZIPPED_LIMIT:.0%} of 250 MiB)")
        assert total < LAMBDA_UNZIPPED_LIMIT


# ---- the checks catch what they are for --------------------------------------------------------


@pytest.fixture
def tampered(function_artifacts: dict[str, FunctionArtifact], tmp_path: Path) -> FunctionArtifact:
    """A copy of the first function's artifact, to spoil."""
    original = function_artifacts[FUNCTIONS[0].logical_id]
    copy = tmp_path / "artifact"
    shutil.copytree(original.path, copy)
    return FunctionArtifact(original.item, copy, original.build_seconds)


def test_content_check_catches_strays_and_gaps(tampered: FunctionArtifact) -> None:
    # Given an artifact with local/ copied in, another function's package, bytecode and a gap
    shutil.copytree(REPO_ROOT / "local", tampered.path / "local", ignore=shutil.ignore_patterns("__pycache__"))
    other = next(item.package for item in FUNCTIONS if item.package != tampered.package)
    (tampered.path / "functions" / other).mkdir()
    (tampered.path / "functions" / other / "app.py").write_text("", encoding="utf-8")
    (tampered.path / "shared" / "__pycache__").mkdir()
    (tampered.path / "shared" / "__pycache__" / "settings.cpython-313.pyc").write_bytes(b"")
    (tampered.path / "shared" / "settings.py").unlink()
    # Then each is reported
    problems = "\n".join(content_problems(tampered.path, tampered.package))
    assert "unexpected local/package.py: local/ is not deployed" in problems
    assert f"unexpected functions/{other}/app.py: another function's package ({other})" in problems
    assert "unexpected shared/__pycache__/settings.cpython-313.pyc: not a Python source" in problems
    assert "missing shared/settings.py" in problems


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("import json, boto3, pydantic, stripe", None),  # the stdlib and requirements: nothing to report
        ("import yaml", "No module named 'yaml'"),  # a development package
        ("import local.net", "No module named 'local'"),  # the local stack, not deployed
        ("import tests.raw", "No module named 'tests'"),
        ("import cgi", "cgi: not in Python 3.13's standard library"),
        (  # a sys.path trick reaching the virtualenv
            f"import sys; sys.path.append({str(Path(pytest.__file__).parents[1])!r}); import yaml",
            "loaded from",
        ),
    ],
    ids=["clean", "dev-package", "local", "tests", "removed-stdlib", "sys-path-trick"],
)
def test_import_check_catches_what_lambda_would_not_have(
    tampered: FunctionArtifact, runtime: Runtime, statement: str, expected: str | None
) -> None:
    # Given a handler module in the artifact that imports something
    module = f"functions.{tampered.package}.probe"
    handler = "\n\n\ndef lambda_handler(event: object, context: object) -> None:\n    return None\n"
    (tampered.path / "functions" / tampered.package / "probe.py").write_text(statement + handler, encoding="utf-8")
    # When the import check imports it
    problems = import_problems(tampered.path, module, tampered.item.logical_id, runtime)
    # Then it reports what Lambda would not have, and nothing else
    if expected is None:
        assert problems == []
    else:
        assert expected in "\n".join(problems)
