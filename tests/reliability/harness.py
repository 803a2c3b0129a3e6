"""One world end to end: generate, connect projects, deliver serially and in parallel, compare.

For a seed: a world is generated in the emulator (tests/reliability/world.py), then projects are
connected to its account, each with its own webhook endpoint and secret:
- `<prefix><seed>-serial` and `<prefix><seed>-serial-again`: every step once, in order, one sender.
  They must end equal (else the harness or the engine is not deterministic: reported apart);
- `<prefix><seed>-t<threads>` for each thread count: every event `copies` times, shuffled, from that
  many senders with retries, the visitor PUTs as one ordered chain among them.
Each parallel project must end equal to the serial one (a mismatch), and every project must hold the
invariant. The emulator itself must have delivered nothing (the projects were connected after the
history was made).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from local.stripe_emulator.control_client import EmulatorAccount

from .delivery import SendStats, deliver_parallel, deliver_serial
from .stack import LocalStack
from .state import Difference, Snapshot, compare, invariant_problems, read_items, snapshot
from .world import SMALL, History, WorldSize, generate


@dataclass
class ProjectRun:
    project: str
    threads: int
    copies: int
    stats: SendStats
    state: Snapshot
    invariant: list[str]
    conflicts: int  # decisions that raced and were retried (the engine's "decision raced" log lines)
    mismatches: list[Difference] = field(default_factory=list)  # against the serial run


@dataclass
class WorldReport:
    seed: int
    size: WorldSize
    history: History
    generate_seconds: float
    serial: ProjectRun
    serial_again: ProjectRun | None
    parallel: list[ProjectRun]
    determinism: list[Difference]  # serial vs serial again
    emulator_deliveries: int

    def problems(self) -> list[str]:
        """Everything that fails the world: mismatches, broken invariants, failed deliveries, harness faults."""
        notes = self.history.notes
        found: list[str] = []
        if self.emulator_deliveries:
            found.append(f"the emulator delivered {self.emulator_deliveries} webhooks itself (harness fault)")
        if self.determinism:
            found.append(f"serial run not deterministic: {len(self.determinism)} differences between two serial runs")
            found.extend(f"  {d.render(notes)}" for d in self.determinism[:20])
        for run in [self.serial, *([self.serial_again] if self.serial_again else []), *self.parallel]:
            found.extend(f"{run.project}: delivery failed: {f}" for f in run.stats.failures[:20])
            found.extend(f"{run.project}: invariant: {p}" for p in run.invariant[:20])
        for run in self.parallel:
            if run.mismatches:
                found.append(
                    f"{run.project} ({run.threads} threads x{run.copies}) differs from the serial run "
                    f"in {len(run.mismatches)} places:"
                )
                found.extend(f"  {d.render(notes)}" for d in run.mismatches[:40])
        return found

    def render(self) -> str:
        lines = [self.history.describe()]
        for run in [self.serial, *([self.serial_again] if self.serial_again else []), *self.parallel]:
            s = run.stats
            lines.append(
                f"  {run.project}: {s.sent} sent ({s.webhooks} webhooks, {s.attempts} attempts, "
                f"{s.retried_5xx} 5xx retried, {s.retried_connection} connection errors, {run.conflicts} conflicts) "
                f"in {s.wall_seconds:.1f}s, {s.events_per_second:.0f} events/s, p50 {s.percentile(50) * 1000:.0f} ms, "
                f"p99 {s.percentile(99) * 1000:.0f} ms; results {dict(s.results)}; "
                f"{len(run.mismatches)} mismatches, {len(run.invariant)} invariant problems"
            )
        return "\n".join(lines)


def _conflicts(stack: LocalStack, since: int) -> int:
    """Decisions that raced and were retried (the engine's `decision raced` log lines) after byte `since`
    of the stack's log. Runs are sequential, so they are the current project's (the visitor API's lines
    do not all name the project)."""
    with stack.log_path.open("rb") as log:
        log.seek(since)
        text = log.read().decode(errors="replace")
    return sum(1 for line in text.splitlines() if "decision raced" in line)


def _log_size(stack: LocalStack) -> int:
    return stack.log_path.stat().st_size


def _connect(stack: LocalStack, projects: Sequence[str], account: EmulatorAccount) -> None:
    merchant = stack.control.client(account.secret_key)
    for project in projects:
        integration = stack.connect(project, account.restricted_key)
        # the runs deliver the history's events themselves, in their orders
        merchant.v1.webhook_endpoints.update(integration["webhook_endpoint_id"], params={"disabled": True})
    deadline = time.monotonic() + 60
    for project in projects:
        while _backfill_status(stack, project) != "completed":
            assert time.monotonic() < deadline, f"{project}: the import of an empty account did not complete"
            time.sleep(0.2)


def _backfill_status(stack: LocalStack, project: str) -> str:
    status: str = stack.call("GET", f"/projects/{project}/integrations/stripe", None, project)[1]["backfill"]["status"]
    return status


def _run(stack: LocalStack, history: History, project: str, *, threads: int, copies: int, seed: int) -> ProjectRun:
    secret = stack.webhook_secret(project)
    token = stack.token(project)
    since = _log_size(stack)
    if threads == 1 and copies == 1:
        stats = deliver_serial(stack.base_url, project, secret, token, history.steps)
    else:
        stats = deliver_parallel(
            stack.base_url, project, secret, token, history.steps, threads=threads, copies=copies, seed=seed
        )
    items = read_items(stack.dynamodb, stack.revenue_table, project)
    return ProjectRun(
        project=project,
        threads=threads,
        copies=copies,
        stats=stats,
        state=snapshot(items, project),
        invariant=invariant_problems(items, project),
        conflicts=_conflicts(stack, since),
    )


def run_world(
    stack: LocalStack,
    seed: int,
    size: WorldSize = SMALL,
    *,
    threads: Sequence[int] = (16,),
    copies: int = 3,
    serial_twice: bool = True,
    prefix: str = "rel",
) -> WorldReport:
    base = f"{prefix}{seed}"
    projects = [
        f"{base}-serial",
        *([f"{base}-serial-again"] if serial_twice else []),
        *(f"{base}-t{n}" for n in threads),
    ]
    started = time.perf_counter()
    # Connected while the account is empty, and their (empty) history imports finished: the runs
    # compare webhook deliveries, which an import reading the same charges meanwhile would race
    history = generate(stack.control, seed, size, before=lambda account: _connect(stack, projects, account))
    generated = time.perf_counter() - started
    serial = _run(stack, history, f"{base}-serial", threads=1, copies=1, seed=seed)
    again = _run(stack, history, f"{base}-serial-again", threads=1, copies=1, seed=seed) if serial_twice else None
    parallel = []
    for n in threads:
        run = _run(stack, history, f"{base}-t{n}", threads=n, copies=copies, seed=seed * 1000 + n)
        run.mismatches = compare(serial.state, run.state)
        parallel.append(run)
    deliveries = stack.control.deliveries(history.account.id)
    return WorldReport(
        seed=seed,
        size=size,
        history=history,
        generate_seconds=generated,
        serial=serial,
        serial_again=again,
        parallel=parallel,
        determinism=compare(serial.state, again.state) if again else [],
        emulator_deliveries=len(deliveries["attempts"]) + int(deliveries["pending"]),
    )
