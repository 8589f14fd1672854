"""`copy_examples(dir)`: write the packaged examples into a folder, never over a file."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from dataworks.errors import UserError

KINDS = ("generators", "templates", "strategies")


def example_files() -> dict[str, bytes]:
    """{relative path: content} of every packaged example."""
    root = resources.files("dataworks.examples")
    files = {}
    for kind in KINDS:
        for entry in sorted(root.joinpath(kind).iterdir(), key=lambda e: e.name):
            if entry.is_file() and entry.name.endswith((".py", ".json")):
                files[f"{kind}/{entry.name}"] = entry.read_bytes()
    return files


def copy_examples(folder: str | Path) -> list[Path]:
    """Write the examples under `folder` (created if missing, inside an existing parent);
    refuse, writing nothing, when any of them is already there."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file, not a folder", hint="name a folder to copy into")
    if not folder.exists() and not folder.parent.is_dir():
        raise UserError(f"the folder {folder.parent} does not exist",
                        hint="create it first, or name a folder inside an existing one")
    files = example_files()
    taken = [name for name in files if (folder / name).exists()]
    if taken:
        raise UserError(f"{folder} already has {', '.join(taken)}; nothing was copied",
                        hint="copy into an empty folder, or move those files away")
    written = []
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(path)
    return written
