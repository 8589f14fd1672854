"""Find or build mongodump and mongorestore (MongoDB Database Tools, Go) into `.tools/bin`.

    .venv/bin/python -m bench.mongotools          # prints the two paths, building if needed

Order of attempts:
1. `DATAWORKS_MONGO_TOOLS_BIN` (a folder holding both binaries), else `.tools/bin`.
2. Build release 100.18.0 from the Go module proxy with the local Go (`GOTOOLCHAIN=local`):
   `go mod download -json MODULE@VERSION` (since `go install` asks the proxy for the version
   list first; the tools' tags are not semver, so the version is the pseudo-version of the
   release commit), copy the module (the cache is read-only), build with the version
   variables the release build sets (`-X main.VersionStr`, `main.GitCommit`).
When the proxy does not serve the module (it answered 403 here in 2026-11), the bench runs
without the mongo-tools row unless `DATAWORKS_MONGO_TOOLS_BIN` names binaries you built.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from dataworks.testing.ferretdb import tools_dir

MODULE = "github.com/mongodb/mongo-tools"
RELEASE = "100.18.0"
RELEASE_COMMIT = "21a342dfee6468ad9350d156d25086da64dd03b1"
PSEUDO_VERSION = "v0.0.0-20260812163951-21a342dfee64"  # tag 100.18.0 (2026-08-12)
TOOLS = ("mongodump", "mongorestore")


class ToolsUnavailable(RuntimeError):
    pass


def _bin_dir() -> Path:
    configured = os.environ.get("DATAWORKS_MONGO_TOOLS_BIN")
    return Path(configured) if configured else tools_dir() / "bin"


def version(binary: Path) -> str:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False)
    first = (out.stdout or out.stderr).splitlines()
    return first[0].split("version:")[-1].strip() if first else "?"


def ensure_mongo_tools(log: bool = True) -> dict[str, str]:
    """Paths of mongodump and mongorestore, building them when missing."""
    folder = _bin_dir()
    paths = {name: folder / name for name in TOOLS}
    if all(p.is_file() for p in paths.values()):
        return {name: str(p) for name, p in paths.items()}
    if os.environ.get("DATAWORKS_MONGO_TOOLS_BIN"):
        raise ToolsUnavailable(f"DATAWORKS_MONGO_TOOLS_BIN={folder} lacks mongodump/mongorestore")
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists():
        raise ToolsUnavailable("Go is not installed, so mongodump/mongorestore cannot be built")
    env = {**os.environ, "GOTOOLCHAIN": "local"}
    with tempfile.TemporaryDirectory(prefix="mongo-tools-") as work:
        tree = Path(work) / "src"
        mod_mode = _source(go, env, tree)
        folder.mkdir(parents=True, exist_ok=True)
        ldflags = f"-X main.VersionStr={RELEASE} -X main.GitCommit={RELEASE_COMMIT}"
        for name in TOOLS:
            if log:
                print(f"building {name} {RELEASE} into {folder} (first use only)", file=sys.stderr)
            subprocess.run(
                [go, "build", f"-mod={mod_mode}", "-trimpath", "-ldflags", ldflags,
                 "-o", str(folder / name), f"./{name}/main"],
                cwd=tree, env={**env, "GOFLAGS": ""}, check=True,
            )
    return {name: str(p) for name, p in paths.items()}


def _source(go: str, env: dict[str, str], tree: Path) -> str:
    """Put the tools' source in `tree`; return the -mod mode its build needs."""
    download = subprocess.run(
        [go, "mod", "download", "-json", f"{MODULE}@{PSEUDO_VERSION}"],
        env={**env, "GOFLAGS": "-mod=mod"}, capture_output=True, text=True, check=False,
    )
    try:
        info = json.loads(download.stdout or "{}")
    except json.JSONDecodeError:
        info = {}
    if info.get("Dir"):
        shutil.copytree(info["Dir"], tree)
        for path in tree.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        # Module zips carry no vendor/ folder: dependencies come from the proxy too.
        return "vendor" if (tree / "vendor" / "modules.txt").is_file() else "mod"
    proxy_error = (info.get("Error") or download.stderr or "no answer").strip()
    raise ToolsUnavailable(
        f"the Go module proxy did not serve {MODULE}@{PSEUDO_VERSION} ({proxy_error}); "
        "set DATAWORKS_MONGO_TOOLS_BIN to a folder with mongodump and mongorestore"
    )


def main() -> int:
    try:
        paths = ensure_mongo_tools()
    except ToolsUnavailable as exc:
        print(f"mongo-tools unavailable: {exc}", file=sys.stderr)
        return 1
    for name, path in paths.items():
        print(f"{name} {version(Path(path))} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
