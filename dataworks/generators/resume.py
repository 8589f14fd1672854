"""What a `generate` command means given what the target already holds.

Generation resumes by default, as migration does: the same command after an interruption
continues the saved run to exactly its total. Everything else is decided here, before the
first insert, so a run never adds a second batch of documents on top of another one:

    saved state        target holds   --force-from-start   outcome
    interrupted run    anything       no                   resume (parameters must match)
    finished run       anything       no                   nothing to do (same source/total)
    none / discarded   nothing        any                  new run
    none / discarded   documents      any                  refused: use --drop-target
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dataworks.errors import CheckpointError, UserError
from dataworks.generators.ledger import BatchLedger
from dataworks.generators.source import GeneratorSource
from dataworks.generators.worker import BatchPlan


@dataclass(frozen=True)
class Requested:
    """What the command line asked for (None: not given)."""

    total: int
    total_given: bool
    seed: int | None
    batch_size: int | None


@dataclass(frozen=True)
class Decision:
    kind: str  # "resume", "new" or "nothing to do"
    plan: BatchPlan | None = None
    ledger: BatchLedger | None = None
    done: int = 0  # for "nothing to do": documents the finished run wrote


def decide(state: dict[str, Any] | None, src: GeneratorSource, asked: Requested, *,
           namespace: str, present: int, new_seed: int, default_batch: int,
           forced: bool) -> Decision:
    """Resume, start, or say there is nothing to do; refuse what would mix two runs."""
    if state is not None and state.get("kind") == "generate" and not forced:
        _check_same_run(state, src, asked)
        if state.get("complete"):
            return Decision("nothing to do", done=int(state.get("documents_done", 0)))
        plan = BatchPlan(src, int(state["seed"]), int(state["total"]),
                         int(state["batch_size"]))
        ledger = BatchLedger(plan.total, plan.batch_size, int(state["watermark"]),
                             [int(b) for b in state.get("done_above", [])])
        return Decision("resume", plan, ledger)
    if present:
        why = ("--force-from-start discards the saved run, but" if forced and state
               else "no interrupted run of this command is saved for it, and")
        raise UserError(
            f"{why} {namespace} already holds {present:,} documents; generating into it "
            "would leave more documents than --total",
            hint="add --drop-target to start clean, or choose another --target-collection",
        )
    plan = BatchPlan(src, new_seed if asked.seed is None else asked.seed, asked.total,
                     asked.batch_size or default_batch)
    return Decision("new", plan, BatchLedger(plan.total, plan.batch_size))


def _check_same_run(state: dict[str, Any], src: GeneratorSource, asked: Requested) -> None:
    finished = bool(state.get("complete"))
    what = "finished" if finished else "interrupted"
    restart = ("add --drop-target to start clean" if finished
               else "add --force-from-start --drop-target to start over")
    if state.get("source") != src.describe():
        raise CheckpointError(
            f"the {what} run into this collection generated from {state.get('source')}, "
            f"not {src.describe()}",
            hint=f"pass the same --source to {'see it' if finished else 'resume'}, or {restart}",
        )
    given = (("--total", asked.total if asked.total_given else None, state["total"]),
             ("--seed", asked.seed, state["seed"]),
             ("--batch-size", asked.batch_size, state["batch_size"]))
    for name, value, saved in given:
        if value is not None and value != saved:
            raise CheckpointError(
                f"{name} {value} differs from the {what} run's {saved}",
                hint=f"leave {name} out {'' if finished else 'to resume '}or {restart}",
            )
