"""Fetch, start and stop local mongo-java-server instances (the second test server) on loopback.

mongo-java-server is an independent Java implementation of the MongoDB wire protocol; it is
15-30x faster than FerretDB here and seeks `_id` ranges, so the tests exercise the read path
Atlas and Cosmos DB get. Its jars come from Maven Central (`dataworks/testing/java/pom.xml`)
and the project's launcher (`DataWorksMongoServer.java`) is compiled against them, both into
`<project>/.tools/mongojava` (git-ignored, with Maven's own cache) the first time.

    python -m dataworks.testing.mongojava start --count 2 --state DIR [--oplog]   # prints URIs
    python -m dataworks.testing.mongojava stop --state DIR
    python -m dataworks.testing.mongojava build
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dataworks.testing.ferretdb import free_port, stop_registered, tools_dir

MONGO_JAVA_SERVER_VERSION = "1.47.0"
SOURCES = Path(__file__).resolve().parent / "java"
LAUNCHER = "DataWorksMongoServer"
DEFAULT_HEAP = "3g"


def install_dir() -> Path:
    return tools_dir() / "mongojava"


def _digest(*names: str) -> str:
    digest = hashlib.sha256()
    for name in names:
        digest.update((SOURCES / name).read_bytes())
    return digest.hexdigest()[:12]


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"mongo-java-server needs `{name}` (Java 17 and Maven): run scripts/setup, or "
            "apt-get install openjdk-17-jdk-headless maven"
        )
    return found


def ensure_mongojava() -> tuple[Path, Path]:
    """The jars directory and the compiled launcher's directory; fetched/compiled if missing.

    Both are named after a digest of their sources, so trees with different launchers share
    `.tools` without rebuilding each other's files; each is built aside, then renamed."""
    home = install_dir()
    lib = home / f"lib-{_digest('pom.xml')}"
    classes = home / f"classes-{_digest('pom.xml', f'{LAUNCHER}.java')}"
    if not lib.is_dir():
        print(f"fetching mongo-java-server {MONGO_JAVA_SERVER_VERSION} into {lib} (first use "
              "only)", file=sys.stderr)
        _build_into(lib, lambda out: [
            _tool("mvn"), "-q", "-B", f"-Dmaven.repo.local={home / 'maven-cache'}",
            "-f", str(SOURCES / "pom.xml"), "dependency:copy-dependencies",
            f"-DoutputDirectory={out}", "-Dstyle.color=never"])
    if not classes.is_dir():
        _build_into(classes, lambda out: [
            _tool("javac"), "-d", str(out), "-cp", f"{lib}/*", str(SOURCES / f"{LAUNCHER}.java")])
    return lib, classes


def _build_into(final: Path, command: Callable[[Path], list[str]]) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=final.name + ".", dir=final.parent))
    try:
        subprocess.run(command(work), check=True, stdout=sys.stderr)
        try:
            work.rename(final)
        except OSError:  # built meanwhile by another process
            if not final.is_dir():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataclass
class MongoJavaServer:
    """One mongo-java-server JVM: in memory, or in an H2 file under `data_dir` (`backend="h2"`)."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    backend: str = "memory"
    oplog: bool = False  # keep an oplog (change streams); costs about half again per insert
    oplog_window: int | None = None  # oplog entries kept; None: the launcher's 50,000
    # Answer `explain` truthfully (an `_id` range is a COLLSCAN here): migrate then reads
    # natural order. Off in tests, so that they exercise the `_id` range reads.
    explain: bool = False
    # The whole heap from the start (-Xms = -Xmx), as the benchmark runs it: a heap that a
    # full GC shrank grew back during the next copy, at a cost billed to that copy.
    fixed_heap: bool = False
    heap: str = field(default_factory=lambda: os.environ.get("DATAWORKS_MONGOJAVA_HEAP",
                                                             DEFAULT_HEAP))
    process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def command(self) -> list[str]:
        lib, classes = ensure_mongojava()
        # An out-of-memory JVM exits (and the tests fail saying so) instead of thrashing.
        heap = [f"-Xms{self.heap}"] if self.fixed_heap else []
        args = [_tool("java"), *heap, f"-Xmx{self.heap}", "-XX:+ExitOnOutOfMemoryError", "-cp",
                f"{classes}{os.pathsep}{lib}/*", LAUNCHER,
                "--port", str(self.port), "--backend", self.backend]
        if self.backend == "h2":
            args += ["--file", str(self.data_dir / "data.mv")]
        if self.explain:
            args.append("--explain")
        if self.oplog:
            args.append("--oplog")
            if self.oplog_window is not None:
                args += ["--oplog-window", str(self.oplog_window)]
        return args

    def start(self, timeout: float = 60.0) -> MongoJavaServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.data_dir / "mongojava.log"
        command = self.command()
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        # The launcher prints "listening ..." only after the socket is bound.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                self.process = None
                raise RuntimeError(f"mongo-java-server exited at start:\n{tail}")
            if b"listening 127.0.0.1:" in log_path.read_bytes():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mongo-java-server did not listen on 127.0.0.1:{self.port} "
                           f"in {timeout}s (log: {log_path})")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def _cmd_start(args: argparse.Namespace) -> int:
    state = Path(args.state)
    state.mkdir(parents=True, exist_ok=True)
    servers = []
    for index in range(args.count):
        server = MongoJavaServer(state / f"server{index}", backend=args.backend,
                                 oplog=args.oplog, oplog_window=args.oplog_window,
                                 explain=args.explain).start()
        assert server.process is not None
        servers.append({"uri": server.uri, "pid": server.process.pid})
        print(server.uri)
    (state / "servers.json").write_text(json.dumps(servers))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mongojava", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start N servers and print their URIs")
    start.add_argument("--count", type=int, default=2)
    start.add_argument("--state", default=".dataworks/dev-servers")
    start.add_argument("--backend", choices=["memory", "h2"], default="memory",
                       help="memory (default) or an H2 file in the state directory")
    start.add_argument("--oplog", action="store_true", help="keep an oplog (change streams)")
    start.add_argument("--oplog-window", type=int, default=None,
                       help="oplog entries kept (default 50,000; 0 keeps all)")
    start.add_argument("--explain", action="store_true",
                       help="answer explain (an _id range is a COLLSCAN here), as the "
                       "benchmark does: migrate then reads natural order")
    stop = sub.add_parser("stop", help="stop the servers started with the same --state")
    stop.add_argument("--state", default=".dataworks/dev-servers")
    sub.add_parser("build", help="fetch the jars and compile the launcher if missing")
    args = parser.parse_args(argv)
    if args.command == "build":
        lib, classes = ensure_mongojava()
        print(classes)
        return 0
    if args.command == "stop":
        stop_registered(Path(args.state))
        return 0
    return _cmd_start(args)


if __name__ == "__main__":
    sys.exit(main())
