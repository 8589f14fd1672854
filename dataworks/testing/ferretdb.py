"""Build, start and stop local FerretDB v1 servers (SQLite backend) on loopback.

FerretDB speaks the MongoDB wire protocol and needs nothing but its own binary, so tests,
the demo and benchmarks get a real server on a machine without mongod. The binary is built
from the Go module proxy into `<project>/.tools/bin` (git-ignored) the first time.

    python -m dataworks.testing.ferretdb start --count 2 --state DIR   # prints URIs
    python -m dataworks.testing.ferretdb stop --state DIR
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

FERRETDB_VERSION = "v1.24.2"
FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def tools_dir() -> Path:
    return Path(os.environ.get("DATAWORKS_TOOLS_DIR", PROJECT_ROOT / ".tools"))


def ferretdb_binary() -> Path:
    configured = os.environ.get("DATAWORKS_FERRETDB_BIN")
    return Path(configured) if configured else tools_dir() / "bin" / "ferretdb"


def ensure_ferretdb() -> Path:
    """Return the FerretDB binary, building it with Go when it is missing."""
    binary = ferretdb_binary()
    if binary.is_file():
        return binary
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists():
        raise RuntimeError(
            "FerretDB is not built and Go is not installed: install Go, or set "
            "DATAWORKS_TEST_MONGO_URI to a running MongoDB-API server"
        )
    binary.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    # `go install pkg@version` asks the proxy for the module's version list (a deprecation
    # check) that the proxy here refuses, and a build from the read-only module cache lacks
    # build/version/version.txt, which FerretDB's own main package requires. So: download
    # the exact version, copy its source, write version.txt, build.
    print(f"building FerretDB {FERRETDB_VERSION} into {binary} (first use only)", file=sys.stderr)
    download = subprocess.run(
        [go, "mod", "download", "-json", f"{FERRETDB_MODULE}@{FERRETDB_VERSION}"],
        env=env, check=True, capture_output=True, text=True,
    )
    source = Path(json.loads(download.stdout)["Dir"])
    with tempfile.TemporaryDirectory() as work:
        tree = Path(work) / "ferretdb"
        shutil.copytree(source, tree)
        for path in tree.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        (tree / "build" / "version" / "version.txt").write_text(FERRETDB_VERSION + "\n")
        subprocess.run(
            [go, "build", "-o", str(binary), "./cmd/ferretdb"], cwd=tree, env=env, check=True
        )
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the server did not accept connections on 127.0.0.1:{port} in {timeout}s")


@dataclass
class FerretDBServer:
    """One FerretDB process with its own SQLite directory."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    extra_args: tuple[str, ...] = ()  # e.g. the flags of a server that requires a login

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 30.0) -> FerretDBServer:
        binary = ensure_ferretdb()
        sqlite_dir = self.data_dir / "sqlite"
        state_dir = self.data_dir / "state"
        sqlite_dir.mkdir(parents=True, exist_ok=True)
        state_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / "ferretdb.log", "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(
            [
                str(binary),
                "--handler=sqlite",
                f"--sqlite-url=file:{sqlite_dir}/",
                f"--state-dir={state_dir}",
                f"--listen-addr=127.0.0.1:{self.port}",
                "--telemetry=disable",
                "--debug-addr=-",
                "--log-level=error",
                *self.extra_args,
            ],
            env={**os.environ, "DO_NOT_TRACK": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        try:
            wait_for_port(self.port, timeout)
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def _cmd_start(args: argparse.Namespace) -> int:
    state = Path(args.state)
    state.mkdir(parents=True, exist_ok=True)
    servers = []
    for index in range(args.count):
        server = FerretDBServer(state / f"server{index}").start()
        assert server.process is not None
        servers.append({"uri": server.uri, "pid": server.process.pid})
        print(server.uri)
    (state / "servers.json").write_text(json.dumps(servers))
    return 0


def stop_registered(state: Path) -> None:
    """Stop the servers a `start` command recorded in `state/servers.json` (any server kind)."""
    registry = state / "servers.json"
    if not registry.is_file():
        return
    for server in json.loads(registry.read_text()):
        try:
            os.kill(server["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
    registry.unlink()


def _cmd_stop(args: argparse.Namespace) -> int:
    stop_registered(Path(args.state))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dev-server", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start N servers and print their URIs")
    start.add_argument("--count", type=int, default=2)
    start.add_argument("--state", default=".dataworks/dev-servers")
    stop = sub.add_parser("stop", help="stop the servers started with the same --state")
    stop.add_argument("--state", default=".dataworks/dev-servers")
    sub.add_parser("build", help="build the FerretDB binary if missing and print its path")
    args = parser.parse_args(argv)
    if args.command == "build":
        print(ensure_ferretdb())
        return 0
    return _cmd_start(args) if args.command == "start" else _cmd_stop(args)


if __name__ == "__main__":
    sys.exit(main())
