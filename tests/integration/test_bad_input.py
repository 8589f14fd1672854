"""Catalogue of wrong inputs through the real CLI (`python -m dataworks ...`).

Each must end with a non-zero exit code and exactly one `error:` line on stderr that says what
is wrong and what to do, with no traceback (no --debug), and, where the input is refused
before the run starts, nothing written to the target (no database, no checkpoint).
The cases run in parallel subprocesses once per module; each test checks one case.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pymongo import MongoClient

from dataworks.testing.ferretdb import free_port

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = str(ROOT / "user_defined/templates/service_order_template.json")
SRC_DB = "dw_bad_input_src"
LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO|WARNING) ")


@dataclass
class Case:
    name: str
    args: list[str]
    expect: str  # regex the error line must match (what is wrong ... what to do)
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    refused_before_run: bool = True
    exit_code: int | None = None
    absent: list[str] = field(default_factory=list)  # paths (under the case's folder) that
    # must not exist afterwards: folders DataWorks must not create
    forbid: str | None = None  # regex the error line must not match (e.g. the flag not used)


def cases(source_uri: str, target_uri: str) -> list[Case]:
    dead = f"mongodb://127.0.0.1:{free_port()}/"

    def mig(name: str, *extra: str, src_coll: str = "orders", target: str | None = None,
            source: str | None = None) -> list[str]:
        return ["migrate", "--source-uri", source or source_uri, "--source-db", SRC_DB,
                "--source-collection", src_coll, "--target-uri", target or target_uri,
                "--target-db", f"dw_bad_{name}", "--target-collection", "orders", *extra]

    def gen(name: str, *extra: str, uri: str | None = None) -> list[str]:
        return ["generate", "--uri", uri or target_uri, "--db", f"dw_bad_{name}",
                "--collection", "gen", *extra]

    fast = {"FRAMEWORK_SERVER_SELECTION_TIMEOUT_MS": "1500"}
    creds = target_uri.replace("mongodb://", "mongodb://dwuser:wrongpw@")
    strategy_raises = (
        "from dataworks import BaseMigrationStrategy\n"
        "class Bad(BaseMigrationStrategy):\n"
        "    def transform(self, doc):\n"
        "        return {'_id': doc['_id'], 'x': 1 / 0}\n"
    )
    return [
        Case("bad_uri_scheme", mig("bad_uri_scheme", source="http://127.0.0.1:1/"),
             r"not a MongoDB connection string.*mongodb://"),
        Case("uri_without_host", mig("uri_without_host", target="mongodb://"),
             r"--target-uri: .*not a MongoDB connection string"),
        Case("unreachable_target", mig("unreachable_target", target=dead),
             r"cannot reach the target at 127\.0\.0\.1:\d+ .*check the host", env=fast),
        Case("unreachable_source", mig("unreachable_source", source=dead),
             r"cannot reach the source at 127\.0\.0\.1:\d+ .*check the host", env=fast),
        Case("unreachable_generate", gen("unreachable_generate", "--source", TEMPLATE,
                                         "--total", "10", uri=dead),
             r"cannot reach the target .*check the host, port and TLS options in --uri ",
             env=fast, forbid=r"GEN_DB_CONNECTION_STRING|--target-uri"),
        # Errors name what the user used: the flag typed, else the setting set.
        Case("unreachable_source_by_flag", mig("unreachable_source_by_flag", source=dead),
             r"cannot reach the source .*options in --source-uri and", env=fast,
             forbid=r"MIG_SOURCE_DB_CONNECTION_STRING"),
        Case("unreachable_source_by_env",
             ["migrate", "--source-db", SRC_DB, "--source-collection", "orders",
              "--target-uri", target_uri, "--target-db", "dw_bad_unreachable_source_by_env"],
             r"cannot reach the source .*options in MIG_SOURCE_DB_CONNECTION_STRING and",
             env={**fast, "MIG_SOURCE_DB_CONNECTION_STRING": dead}, forbid=r"--source-uri"),
        Case("unreachable_source_by_env_file",
             ["indexes", "compare", "--target-uri", target_uri,
              "--target-db", "dw_bad_unreachable_source_by_env_file"],
             r"cannot reach the source .*options in FRAMEWORK_SOURCE_DB_CONNECTION_STRING and",
             env=fast, forbid=r"--source-uri|MIG_SOURCE_DB_CONNECTION_STRING",
             files={".env_local": f"FRAMEWORK_SOURCE_DB_CONNECTION_STRING={dead}\n"
                                  f"MIG_SOURCE_DB_NAME={SRC_DB}\n"
                                  "MIG_SOURCE_DB_COLLECTION=orders\n"}),
        Case("unreachable_generate_by_env",
             ["generate", "--source", TEMPLATE, "--total", "10",
              "--target-db", "dw_bad_unreachable_generate_by_env"],
             r"cannot reach the target .*options in GEN_DB_CONNECTION_STRING and",
             env={**fast, "GEN_DB_CONNECTION_STRING": dead}, forbid=r"--target-uri|--uri"),
        Case("verify_unreachable_target_by_env",
             ["verify", "--source-uri", source_uri, "--source-db", SRC_DB,
              "--source-collection", "orders",
              "--target-db", "dw_bad_verify_unreachable_target_by_env"],
             r"cannot reach the target .*options in MIG_TARGET_DB_CONNECTION_STRING and",
             env={**fast, "MIG_TARGET_DB_CONNECTION_STRING": dead}, forbid=r"--target-uri"),
        Case("missing_source_collection_by_env",
             ["migrate", "--source-uri", source_uri, "--source-db", SRC_DB,
              "--target-uri", target_uri,
              "--target-db", "dw_bad_missing_source_collection_by_env"],
             r"source collection dw_bad_input_src\.ordres does not exist \(did you mean "
             r"orders\?\) \(check MIG_SOURCE_DB_COLLECTION ",
             env={"MIG_SOURCE_DB_COLLECTION": "ordres", "MIG_TARGET_DB_COLLECTION": "orders"},
             forbid=r"--source-collection|--source-db|MIG_SOURCE_DB_NAME"),
        Case("bad_credentials", mig("bad_credentials", target=creds),
             r"target rejected the credentials.*check the user, password"),
        Case("missing_source_collection", mig("missing_source_collection", src_coll="nope"),
             r"source collection dw_bad_input_src\.nope does not exist.*check "
             r"--source-collection \(on 127\.0\.0\.1:\d+\)", forbid=r"MIG_SOURCE"),
        Case("same_namespace", ["migrate", "--source-uri", source_uri, "--source-db", SRC_DB,
                                "--source-collection", "orders", "--target-uri", source_uri,
                                "--target-db", SRC_DB, "--target-collection", "orders"],
             r"source and target may be the same collection.*--target-db"),
        Case("strategy_missing", mig("strategy_missing", "--strategy", "nope.py"),
             r"nope\.py: strategy file does not exist.*check the path"),
        Case("strategy_syntax_error", mig("strategy_syntax_error", "--strategy", "syntax.py"),
             r"syntax\.py:1: syntax error", files={"syntax.py": "def broken(:\n"}),
        Case("strategy_without_class", mig("strategy_without_class", "--strategy", "empty.py"),
             r"empty\.py.*no subclass of dataworks\.BaseMigrationStrategy",
             files={"empty.py": "x = 1\n"}),
        Case("strategy_unknown_class",
             mig("strategy_unknown_class", "--strategy", "one.py:Nope"), r"one\.py.*Nope",
             files={"one.py": "from dataworks import BaseMigrationStrategy\n"
                              "class One(BaseMigrationStrategy):\n    pass\n"}),
        Case("strategy_raises_in_transform",
             mig("strategy_raises_in_transform", "--strategy", "raises.py"),
             r"raises\.py:4: the strategy's transform raised ZeroDivisionError.*_id.*resume",
             files={"raises.py": strategy_raises}, refused_before_run=False),
        Case("template_not_json", gen("template_not_json", "--source", "bad.json"),
             r"bad\.json", files={"bad.json": "{ not json"}),
        Case("template_unknown_placeholder", gen("template_unknown_placeholder",
                                                 "--source", "ph.json"),
             r"unknown placeholder 'nosuch'", files={"ph.json": '{"a": "{{ nosuch }}"}'}),
        Case("generator_file_missing", gen("generator_file_missing", "--source", "nope.py"),
             r"nope\.py.*does not exist"),
        Case("migrate_batch_size_zero", mig("migrate_batch_size_zero", "--batch-size", "0"),
             r"--batch-size: .*greater than 0"),
        Case("migrate_batch_size_negative",
             mig("migrate_batch_size_negative", "--batch-size", "-5"),
             r"--batch-size: .*greater than 0"),
        Case("env_batch_size_zero", mig("env_batch_size_zero"),
             r"setting MIG_BATCH_SIZE: .*greater than 0", env={"MIG_BATCH_SIZE": "0"}),
        Case("alias_named_as_typed", mig("alias_named_as_typed", "--insert-workers", "many"),
             r"Invalid value for '--insert-workers': .*integer"),
        Case("source_collection_typo", mig("source_collection_typo", src_coll="ordrs"),
             r"source collection dw_bad_input_src\.ordrs does not exist "
             r"\(did you mean orders\?\)"),
        Case("source_db_typo", ["migrate", "--source-uri", source_uri, "--source-db",
                                "dw_bad_input_scr", "--source-collection", "orders",
                                "--target-uri", target_uri, "--target-db", "dw_bad_source_db_typo"],
             r"no database dw_bad_input_scr; did you mean dw_bad_input_src\?\) "
             r"\(check --source-db ", forbid=r"MIG_SOURCE|--source-collection"),
        Case("generate_batch_size_zero", gen("generate_batch_size_zero", "--source", TEMPLATE,
                                             "--batch-size", "0"),
             r"--batch-size.*greater than or equal to 1.*--help"),
        Case("generate_total_negative", gen("generate_total_negative", "--source", TEMPLATE,
                                            "--total", "-5"), r"--total"),
        Case("unknown_profile", mig("unknown_profile", "--profile", "prod"),
             r"unknown profile 'prod'.*use one of"),
        Case("corrupt_checkpoint_file",
             mig("corrupt_checkpoint_file", "--checkpoint-store", "file:cp.json"),
             r"checkpoint file cp\.json is corrupt.*--force-from-start",
             files={"cp.json": '{"format": 1, "partitions": [tru'}),
        Case("checkpoint_folder_missing",
             mig("checkpoint_folder_missing", "--checkpoint-store", "file:nofolder/cp.json"),
             r"--checkpoint-store file:nofolder/cp\.json: the folder nofolder does not exist",
             exit_code=2, absent=["nofolder"]),
        Case("generate_checkpoint_folder_missing",
             gen("generate_checkpoint_folder_missing", "--source", TEMPLATE, "--total", "10",
                 "--checkpoint-store", "file:no/such/dir"),
             r"--checkpoint-store file:no/such/dir: the folder no/such does not exist",
             exit_code=2, absent=["no"]),
        Case("checkpoint_file_in_the_way",
             mig("checkpoint_file_in_the_way", "--checkpoint-store", "file:afile/cp.json"),
             r"afile is a file, not a folder", files={"afile": "x"}, exit_code=2),
        Case("checkpoint_no_permission",
             gen("checkpoint_no_permission", "--source", TEMPLATE, "--total", "10",
                 "--checkpoint-store", "file:/sys/dw_cp.json"),
             r"--checkpoint-store file:/sys/dw_cp\.json: no permission to write in /sys",
             exit_code=2),
        Case("generator_returns_no_document",
             gen("generator_returns_no_document", "--source", "notdoc.py", "--total", "10"),
             r"notdoc\.py:5: NotDoc\.generate_document returned str 'order 0' for document 0; "
             r"expected a dict", files={"notdoc.py": NOT_A_DOCUMENT}, exit_code=2),
        Case("preview_generator_returns_no_document",
             gen("preview_generator_returns_no_document", "--source", "notdoc.py",
                 "--preview", "2"),
             r"notdoc\.py:5: NotDoc\.generate_document returned str", exit_code=2,
             files={"notdoc.py": NOT_A_DOCUMENT}),
        Case("env_file_bad_value", mig("env_file_bad_value"),
             r"^error: \.env_local:3: setting MIG_BATCH_SIZE: .*integer.*'lots'",
             files={".env_local": "GEN_DB_NAME=x\n# batch\nMIG_BATCH_SIZE=lots\n"}),
        Case("unknown_checkpoint_store",
             mig("unknown_checkpoint_store", "--checkpoint-store", "s3://bucket/x"),
             r"unknown checkpoint store 's3://bucket/x'.*file:PATH"),
        Case("unknown_option", mig("unknown_option", "--bogus"),
             r"No such option: --bogus.*dataworks migrate --help"),
        Case("workers_not_a_number", mig("workers_not_a_number", "--workers", "many"),
             r"Invalid value for '--workers': .*integer"),
        Case("env_file_missing", mig("env_file_missing", "--env-file", "missing.env"),
             r"env file missing\.env does not exist"),
        Case("bad_env_value", mig("bad_env_value"), r"FRAMEWORK_MAX_INSERT_WORKERS.*integer",
             env={"FRAMEWORK_MAX_INSERT_WORKERS": "lots"}),
        Case("no_migration_target", ["migrate", "--source-uri", source_uri,
                                     "--source-db", SRC_DB, "--source-collection", "orders"],
             r"no migration target is set.*MIG_TARGET_DB_CONNECTION_STRING"),
        Case("dry_run_with_resume", gen("dry_run_with_resume", "--source", TEMPLATE,
                                        "--dry-run", "--resume"), r"--dry-run writes nothing"),
        Case("generate_without_source", gen("generate_without_source"),
             r"Missing option '--source'"),
        Case("verify_missing_source", ["verify", "--source-uri", source_uri,
                                       "--source-db", SRC_DB, "--source-collection", "nope",
                                       "--target-uri", target_uri,
                                       "--target-db", "dw_bad_verify_missing_source"],
             r"source collection dw_bad_input_src\.nope does not exist.*check "
             r"--source-collection", forbid=r"MIG_SOURCE"),
        Case("verify_unreachable_target", ["verify", "--source-uri", source_uri,
                                           "--source-db", SRC_DB, "--source-collection",
                                           "orders", "--target-uri", dead,
                                           "--target-db", "dw_bad_verify_unreachable"],
             r"cannot reach the target at 127\.0\.0\.1:\d+ .*--target-uri", env=fast,
             forbid=r"MIG_TARGET"),
        Case("indexes_unreachable_source", ["indexes", "compare", "--source-uri", dead,
                                            "--source-db", SRC_DB, "--source-collection",
                                            "orders", "--target-uri", target_uri,
                                            "--target-db", "dw_bad_indexes_unreachable"],
             r"cannot reach the source at 127\.0\.0\.1:\d+ .*--source-uri", env=fast,
             forbid=r"MIG_SOURCE"),
    ]


NOT_A_DOCUMENT = (
    "from dataworks import BaseDataGenerator\n\n\nclass NotDoc(BaseDataGenerator):\n"
    "    def generate_document(self, document_id=None):\n"
    "        return f'order {document_id}'\n"
)


def run_case(case: Case, workdir: Path) -> subprocess.CompletedProcess[str]:
    cwd = workdir / case.name
    cwd.mkdir()
    for name, text in case.files.items():
        (cwd / name).write_text(text)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MIG_", "GEN_", "FRAMEWORK_"))}
    env.update({"COLUMNS": "200", **case.env})
    result = subprocess.run([sys.executable, "-m", "dataworks", *case.args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    result.leftovers = [p for p in case.absent if (cwd / p).exists()]  # type: ignore[attr-defined]
    return result


@pytest.fixture(scope="module")
def outcomes(source_uri, target_uri, tmp_path_factory):
    with MongoClient(source_uri) as client:
        client[SRC_DB]["orders"].drop()
        client[SRC_DB]["orders"].insert_many([{"_id": i, "v": i} for i in range(50)])
    workdir = tmp_path_factory.mktemp("bad_input")
    catalogue = cases(source_uri, target_uri)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda c: run_case(c, workdir), catalogue))
    return {case.name: (case, result) for case, result in zip(catalogue, results, strict=True)}


CASE_NAMES = [c.name for c in cases("mongodb://127.0.0.1:1/", "mongodb://127.0.0.1:2/")]


def test_catalogue_has_at_least_20_cases():
    assert len(CASE_NAMES) >= 20


# mongo-java-server has no authentication: any credentials fail there as an unknown command.
NEEDS = {"bad_credentials": pytest.mark.needs("authenticate")}


@pytest.mark.parametrize("name", [pytest.param(n, marks=NEEDS.get(n, ())) for n in CASE_NAMES])
def test_wrong_input_gets_one_clear_line(name, outcomes, target_uri):
    case, result = outcomes[name]
    stderr = result.stderr
    assert result.returncode != 0, f"exit 0; stderr: {stderr}"
    assert result.returncode == (case.exit_code or result.returncode)
    assert "Traceback" not in stderr and "Traceback" not in result.stdout
    lines = [line for line in stderr.splitlines() if line.strip() and not LOG_LINE.match(line)]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert lines[0].startswith("error: "), lines[0]
    assert re.search(case.expect, lines[0]), f"{case.expect!r} not in {lines[0]!r}"
    assert not (case.forbid and re.search(case.forbid, lines[0])), \
        f"{case.forbid!r} in {lines[0]!r}"
    assert not result.leftovers, f"created {result.leftovers}"
    if case.refused_before_run:
        db = f"dw_bad_{name}"
        with MongoClient(target_uri) as client:
            # no collection in it (mongo-java-server lists a database once anything read it)
            assert client[db].list_collection_names() == []
            checkpoints = client["dataworks_meta"]["checkpoints"]
            assert checkpoints.count_documents({"_id": {"$regex": db}}) == 0



def test_parse_error_is_a_json_line_in_json_mode(tmp_path):
    """--log-format json: stderr carries only JSON objects, a mistyped command line too."""
    import json

    result = run_case(Case("json_parse_error", ["migrate", "--bogus", "--log-format", "json"],
                           r""), tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    record = json.loads(lines[0])
    assert record["event"] == "error" and record["exit_code"] == 2
    assert "No such option: --bogus" in record["message"]


def test_misspelt_env_file_key_is_warned_with_the_closest_name(tmp_path):
    """A key that looks like a setting but is none would be ignored in silence."""
    files = {".env_local": "GEN_DB_NAME=x\nMIG_TARGET_DB_COLECTION=orders\n"}
    result = run_case(Case("misspelt_key", ["config", "show"], r"", files=files), tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"WARNING \.env_local:2: unknown setting MIG_TARGET_DB_COLECTION, "
                     r"ignored; did you mean MIG_TARGET_DB_COLLECTION\?", result.stderr), \
        result.stderr


@pytest.fixture(scope="module")
def login_server(tmp_path_factory):
    """A FerretDB that requires a login (its new authentication, one admin user)."""
    from dataworks.testing.ferretdb import FerretDBServer

    server = FerretDBServer(Path(tmp_path_factory.mktemp("ferretdb-auth")), extra_args=(
        "--test-enable-new-auth", "--setup-username=admin", "--setup-password=s3cret",
        "--setup-database=admin")).start()
    yield server.uri
    server.stop()


@pytest.mark.parametrize("side", ["generate", "migrate source", "migrate target"])
def test_server_requiring_a_login_given_none_names_the_setting(side, login_server, target_uri,
                                                               tmp_path):
    if side == "generate":
        args = ["generate", "--source", TEMPLATE, "--total", "10", "--target-uri", login_server,
                "--target-db", "dw_login"]
        expect = r"the target requires a login, and --target-uri gives none"
    elif side == "migrate source":
        args = ["migrate", "--source-uri", login_server, "--source-db", "a",
                "--source-collection", "b", "--target-uri", target_uri, "--target-db", "dw_x"]
        expect = r"the source requires a login, and --source-uri gives none"
    else:
        args = ["migrate", "--source-uri", target_uri, "--source-db", SRC_DB,
                "--source-collection", "orders", "--target-uri", login_server,
                "--target-db", "dw_login"]
        expect = r"the target requires a login, and --target-uri gives none"
    result = run_case(Case(side.replace(" ", "_"), args, expect), tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and re.search(expect, lines[0]), result.stderr
    assert "USER:PASSWORD@" in lines[0]
