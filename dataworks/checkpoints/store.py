"""Where a run's state lives between processes.

A checkpoint is one document per run id: `{"format": N, "run_id": ..., "config_hash": ...,
<engine-specific fields>}`. Values keep their BSON types (an `_id` high-water mark may be an
ObjectId, an Int64 or a string), so the file store writes MongoDB canonical extended JSON.

Stores:
- `TargetCheckpointStore`: the `dataworks_meta.checkpoints` collection on the target cluster
  (default: state travels with the data).
- `FileCheckpointStore`: one JSON file per run in a directory, or a single file; written
  atomically (temp file, fsync, rename) so a crash leaves the old or the new state, never half.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from bson import json_util
from bson.json_util import JSONMode, JSONOptions

from dataworks.errors import CheckpointError

CHECKPOINT_FORMAT = 1
META_DB = "dataworks_meta"
CHECKPOINT_COLLECTION = "checkpoints"
_JSON = JSONOptions(json_mode=JSONMode.CANONICAL)


class CheckpointStore(Protocol):
    description: str

    async def load(self, run_id: str) -> dict[str, Any] | None: ...

    async def save(self, run_id: str, state: dict[str, Any]) -> None: ...

    async def delete(self, run_id: str) -> None: ...

    async def list_runs(self) -> list[dict[str, Any]]: ...


class TargetCheckpointStore:
    """Checkpoints in `dataworks_meta.checkpoints` on the target."""

    def __init__(self, client: Any, database: str = META_DB) -> None:
        self._collection = client[database][CHECKPOINT_COLLECTION]
        self.description = f"target {database}.{CHECKPOINT_COLLECTION}"

    async def load(self, run_id: str) -> dict[str, Any] | None:
        doc = await self._collection.find_one({"_id": run_id})
        if doc is None:
            return None
        doc.pop("_id", None)
        return dict(doc)

    async def save(self, run_id: str, state: dict[str, Any]) -> None:
        await self._collection.replace_one({"_id": run_id}, {"_id": run_id, **state}, upsert=True)

    async def delete(self, run_id: str) -> None:
        await self._collection.delete_one({"_id": run_id})

    async def list_runs(self) -> list[dict[str, Any]]:
        runs = []
        async for doc in self._collection.find({}, batch_size=1000).sort("_id", 1):
            run_id = doc.pop("_id")
            runs.append({**doc, "run_id": run_id})
        return runs


class FileCheckpointStore:
    """Checkpoints as extended-JSON files.

    `path` ending in `.json` is one file holding one run; auxiliary records whose key has a
    colon (`pending-indexes:<ns>`) go beside it as `<stem>.<key>.json`, so they never
    overwrite the run. Any other path is a directory with one `<run_id>.json` per run.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.description = f"file {self.path}"

    def _file(self, run_id: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in run_id)
        if self.path.suffix != ".json":
            return self.path / f"{safe}.json"
        if ":" in run_id:
            return self.path.with_name(f"{self.path.stem}.{safe}.json")
        return self.path

    async def load(self, run_id: str) -> dict[str, Any] | None:
        file = self._file(run_id)
        if not file.exists():
            return None
        state = self._read(file)
        if file == self.path and state.get("run_id") not in (None, run_id):
            raise CheckpointError(
                f"checkpoint file {file} belongs to another run ({state.get('run_id')})",
                hint="use another file, or --force-from-start to overwrite it",
            )
        return state

    @staticmethod
    def _read(file: Path) -> dict[str, Any]:
        try:
            state = json_util.loads(file.read_text(encoding="utf-8"), json_options=_JSON)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CheckpointError(
                f"checkpoint file {file} is corrupt ({exc})",
                hint="delete it or run with --force-from-start to begin again",
            ) from None
        if not isinstance(state, dict):
            raise CheckpointError(f"checkpoint file {file} does not hold a JSON object")
        return state

    async def save(self, run_id: str, state: dict[str, Any]) -> None:
        write_atomically(self._file(run_id), json_util.dumps(state, json_options=_JSON, indent=1))

    async def delete(self, run_id: str) -> None:
        self._file(run_id).unlink(missing_ok=True)

    async def list_runs(self) -> list[dict[str, Any]]:
        files = [self.path] if self.path.suffix == ".json" else sorted(self.path.glob("*.json"))
        runs = []
        for file in files:
            if file.is_file():
                state = self._read(file)
                runs.append({**state, "run_id": state.get("run_id", file.stem)})
        return runs


def write_atomically(path: Path, text: str) -> None:
    """temp file in the same directory, fsync, rename: readers see old or new, never half.
    Creates the file's own folder at most (a store folder the user named), never its parents."""
    path.parent.mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_store_spec(spec: str) -> None:
    """Refuse (exit 2) a checkpoint store that could not be written, before a run starts:
    `file:PATH` whose folder is missing, a file where a folder should be (or the reverse),
    or no permission. Nothing is created here."""
    kind, path = parse_store_spec(spec)
    if kind != "file" or path is None:
        return
    target = Path(path)
    single = target.suffix == ".json"
    # A single file lives in its parent folder; a store folder may be created, inside an
    # existing parent.
    folder = target.parent if single or not target.exists() else target
    problem = None
    if single and target.is_dir():
        problem = f"{target} is a folder, not a .json file"
    elif not single and target.exists() and not target.is_dir():
        problem = f"{target} is a file, not a folder (a single-run file must end in .json)"
    elif not folder.exists():
        problem = f"the folder {folder} does not exist"
    elif not folder.is_dir():
        problem = f"{folder} is a file, not a folder"
    elif target.exists() and single and not os.access(target, os.W_OK):
        problem = f"no permission to write {target}"
    elif not _can_create_in(folder):
        problem = f"no permission to write in {folder}"
    if problem is not None:
        raise CheckpointError(
            f"--checkpoint-store {spec}: {problem}",
            hint="create the folder first or name a writable place; folders are never "
            "created outside the one you name",
        )


def _can_create_in(folder: Path) -> bool:
    """Try it: permission bits say nothing for root or on a read-only mount."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".dataworks-probe.", dir=folder)
    except OSError:
        return False
    os.close(fd)
    Path(probe).unlink(missing_ok=True)
    return True


def parse_store_spec(spec: str) -> tuple[str, str | None]:
    """`target` -> ("target", None); `file:PATH` -> ("file", PATH)."""
    if spec == "target":
        return "target", None
    if spec.startswith("file:") and len(spec) > 5:
        return "file", spec[5:]
    raise CheckpointError(
        f"unknown checkpoint store '{spec}'", hint="use --checkpoint-store target or file:PATH"
    )


def open_store(spec: str, target_client: Any) -> CheckpointStore:
    """The checkpoint store `--checkpoint-store` names: `target` (a collection on the
    target, reached through `target_client`) or `file:PATH`."""
    kind, path = parse_store_spec(spec)
    if kind == "file":
        assert path is not None
        return FileCheckpointStore(path)
    return TargetCheckpointStore(target_client)
