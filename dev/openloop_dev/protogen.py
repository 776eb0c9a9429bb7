"""Generate the Python code for every contract in ``protos/``.

The generated modules are committed (so a service can be imported without the
toolchain) and a test regenerates them into a scratch folder to catch drift.
Run ``python -m openloop_dev.protogen`` after editing a ``.proto`` file.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO_ROOT / "protos"
GENERATED_ROOT = REPO_ROOT / "gen" / "python"


def proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def generate(out_dir: Path) -> None:
    """Write ``*_pb2.py``, ``*_pb2_grpc.py`` and their ``.pyi`` stubs under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    well_known = resources.files("grpc_tools") / "_proto"
    bin_dir = Path(sys.executable).parent
    args = [
        "grpc_tools.protoc",
        f"--proto_path={PROTO_ROOT}",
        f"--proto_path={well_known}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *(str(path.relative_to(PROTO_ROOT)) for path in proto_files()),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed; see the messages above")
    for package_dir in {p.parent for p in out_dir.rglob("*_pb2.py")}:
        for directory in (package_dir, *package_dir.parents):
            if directory == out_dir:
                break
            (directory / "__init__.py").touch()
            (directory / "py.typed").touch()


def main() -> None:
    generate(GENERATED_ROOT)
    print(f"generated {len(proto_files())} protos into {GENERATED_ROOT.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
