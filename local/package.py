"""Deployment packages built the way `sam build` builds them, without SAM: `make package`.

Every resource of template.yaml with `Metadata: BuildMethod: makefile` (the functions and the
dependencies layer) is built by `make build-<LogicalId>` with ARTIFACTS_DIR set, as `sam build` does,
into .aws-sam/local-build/<LogicalId>/, zipped beside it, and measured: files, unzipped and zipped
bytes. What a function's artifact holds is the Makefile's business (functions/__init__.py, the
function's package named by its Handler, shared/); tests/deploy checks it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.stack.functions import merge_globals
from local.stack.template import DEFAULT_TEMPLATE, REPO_ROOT, TemplateError, load_template

LOCAL_BUILD_DIR = REPO_ROOT / ".aws-sam" / "local-build"
# Lambda's limit on a function and all its layers, unzipped.
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
_FUNCTION = "AWS::Serverless::Function"
_LAYER = "AWS::Serverless::LayerVersion"


@dataclass(frozen=True)
class Buildable:
    """A resource that `sam build` builds with the Makefile."""

    logical_id: str
    resource_type: str
    package: str | None  # a function's package under functions/ (from its Handler); None for a layer

    @property
    def is_layer(self) -> bool:
        return self.resource_type == _LAYER


@dataclass(frozen=True)
class Sizes:
    files: int
    unzipped_bytes: int
    zipped_bytes: int


def handler_package(handler: object) -> str:
    """`functions.<package>.app.lambda_handler` -> `<package>`."""
    parts = str(handler).split(".")
    if len(parts) != 4 or parts[0] != "functions" or parts[2] != "app" or not parts[1].isidentifier():
        raise TemplateError(f"Handler {handler!r} is not functions.<package>.app.<function>")
    return parts[1]


def makefile_builds(template: Mapping[str, Any]) -> list[Buildable]:
    """The resources built by `make build-<LogicalId>`, in template order."""
    function_globals = (template.get("Globals") or {}).get("Function") or {}
    builds = []
    for logical_id, resource in template["Resources"].items():
        if (resource.get("Metadata") or {}).get("BuildMethod") != "makefile":
            continue
        kind = str(resource.get("Type"))
        if kind == _FUNCTION:
            properties = merge_globals(function_globals, resource.get("Properties") or {})
            builds.append(Buildable(logical_id, kind, handler_package(properties.get("Handler"))))
        elif kind == _LAYER:
            builds.append(Buildable(logical_id, kind, None))
        else:
            raise TemplateError(f"{logical_id}: BuildMethod makefile on a {kind}")
    return builds


def build(logical_id: str, artifacts_dir: Path, *, source_dir: Path = REPO_ROOT, makefile: Path | None = None) -> None:
    """Run `make build-<logical_id>` as `sam build` does.

    SAM runs the Makefile of the CodeUri (`--makefile`) in `source_dir` (a scratch copy of the CodeUri,
    or the CodeUri itself with --build-in-source), with ARTIFACTS_DIR in the environment pointing to
    an existing, empty folder.
    """
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    manifest = makefile or source_dir / "Makefile"
    command = ["make", "--no-print-directory", "--makefile", str(manifest), f"build-{logical_id}"]
    # The layer is pip-installed by this interpreter's pip (the virtualenv's has one; a bare system
    # Python may not): sam build itself uses the Makefile's default, `python3 -m pip`.
    environment = {
        "LAYER_PIP": f"{sys.executable} -m pip",
        **os.environ,
        "ARTIFACTS_DIR": str(artifacts_dir.resolve()),
    }
    subprocess.run(command, cwd=source_dir, env=environment, check=True)  # noqa: S603 - fixed command


def files_of(directory: Path) -> list[Path]:
    """The regular files under `directory`, sorted."""
    return sorted(path for path in directory.rglob("*") if path.is_file())


def zip_directory(directory: Path, zip_path: Path) -> Sizes:
    """Zip `directory`'s contents (deflated, as `sam deploy` uploads them) and measure it."""
    files = files_of(directory)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(directory).as_posix())
    return Sizes(
        files=len(files),
        unzipped_bytes=sum(path.stat().st_size for path in files),
        zipped_bytes=zip_path.stat().st_size,
    )


def _mebibytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    parser.add_argument("--out", type=Path, default=LOCAL_BUILD_DIR, help="where the artifacts and zips go")
    args = parser.parse_args(argv)

    builds = makefile_builds(load_template(args.template))
    sizes: dict[str, Sizes] = {}
    for item in builds:
        artifacts_dir = args.out / item.logical_id
        shutil.rmtree(artifacts_dir, ignore_errors=True)
        build(item.logical_id, artifacts_dir)
        sizes[item.logical_id] = zip_directory(artifacts_dir, args.out / f"{item.logical_id}.zip")

    print(f"\n{'artifact':<28}{'files':>7}{'unzipped bytes':>16}{'zipped bytes':>14}")
    for logical_id, size in sizes.items():
        print(f"{logical_id:<28}{size.files:>7}{size.unzipped_bytes:>16,}{size.zipped_bytes:>14,}")
    layers = sum(sizes[item.logical_id].unzipped_bytes for item in builds if item.is_layer)
    functions = [sizes[item.logical_id].unzipped_bytes for item in builds if not item.is_layer]
    if functions:
        largest = max(functions) + layers
        print(
            f"largest function + layers unzipped: {_mebibytes(largest)} "
            f"of Lambda's {_mebibytes(LAMBDA_UNZIPPED_LIMIT)} ({largest / LAMBDA_UNZIPPED_LIMIT:.0%})"
        )
    print(f"artifacts and zips in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
