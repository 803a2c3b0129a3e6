"""Reliability sweep (`make reliability`): generated worlds delivered serially and from 1, 4 and 16 senders.

For each world of the sweep (a size and a seed; tests/reliability/world.py), over one real local stack
(`python -m local.stack` as a subprocess): the history is delivered once in order from one sender,
twice (the reference must be deterministic), then, for each thread count, every event three times,
shuffled, with Stripe-like retries on 5xx, the visitor PUTs among them in their order. Every parallel
project's final state is compared with the serial one (ledger, totals, links, timelines, context
events, plans, visitors) and every project is checked against the ledger/total invariant.

Prints, and writes to bench/results/reliability.md (and .json), a table per run kind: worlds x
threads, deliveries, the fault points the run went through (5xx answers retried, connection errors
retried, decisions that raced and were retried by the engine, duplicate deliveries answered),
mismatches (must be 0), invariant problems (must be 0), events/s and p50/p99 latency of a webhook
attempt. Then every mismatch, one line each. Exit status 1 when any world has a problem.

Run: `make reliability` (default sweep, a few minutes on 2 cores) or
`python -m bench.reliability --sweep test:1-3,small:101-104,medium:201,observed:301 --threads 1,4,16`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.reliability import world
from tests.reliability.delivery import SendStats
from tests.reliability.harness import ProjectRun, WorldReport, run_world
from tests.reliability.stack import local_stack

DEFAULT_SWEEP = "small:101-103,medium:201"
SIZES = {"test": world.TEST, "small": world.SMALL, "medium": world.MEDIUM, "observed": world.OBSERVED}
RESULTS = Path(__file__).resolve().parent / "results"


def parse_sweep(text: str) -> list[tuple[str, int]]:
    """`small:101-104,medium:201` -> [("small", 101), ..., ("medium", 201)]."""
    worlds: list[tuple[str, int]] = []
    for part in text.split(","):
        size, _, seeds = part.strip().partition(":")
        if size not in SIZES or not seeds:
            raise SystemExit(f"--sweep: {part!r} is not <{'|'.join(SIZES)}>:<seed>[-<seed>]")
        first, _, last = seeds.partition("-")
        worlds.extend((size, seed) for seed in range(int(first), int(last or first) + 1))
    return worlds


@dataclass
class Row:
    """One line of the table: every run of one kind (serial, or N threads) over all worlds."""

    kind: str
    threads: int
    copies: int
    worlds: int = 0
    stats: SendStats = field(default_factory=SendStats)
    conflicts: int = 0
    mismatches: Counter[str] = field(default_factory=Counter)  # by category: ledger, totals, timelines...
    invariant: int = 0

    def add(self, run: ProjectRun) -> None:
        self.worlds += 1
        wall = self.stats.wall_seconds + run.stats.wall_seconds
        self.stats.merge(run.stats)
        self.stats.wall_seconds = wall
        self.conflicts += run.conflicts
        self.mismatches.update(d.category for d in run.mismatches)
        self.invariant += len(run.invariant)

    def cells(self) -> list[str]:
        s = self.stats
        duplicates = s.results["duplicate"] + s.results["already_booked"]
        return [
            self.kind,
            f"{self.worlds} x {self.threads}",
            f"{s.sent:,} ({s.webhooks:,} webhooks)",
            f"{s.attempts:,}",
            f"{s.retried_5xx} / {s.retried_connection} / {self.conflicts} / {duplicates:,}",
            _breakdown(self.mismatches),
            str(self.invariant),
            f"{s.events_per_second:.1f}",
            f"{s.percentile(50) * 1000:.0f}",
            f"{s.percentile(99) * 1000:.0f}",
        ]


def _breakdown(counts: Counter[str]) -> str:
    """`7 (ledger 1, totals 1, timelines 5)`, or `0`."""
    total = sum(counts.values())
    if not total:
        return "0"
    return f"{total} ({', '.join(f'{category} {n}' for category, n in sorted(counts.items()))})"


HEADER = [
    "Run",
    "Worlds x threads",
    "Deliveries",
    "Attempts",
    "Fault points: 5xx retried / conn. errors / conflicts / duplicates",
    "Mismatches",
    "Invariant problems",
    "Events/s",
    "p50 ms",
    "p99 ms",
]


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join(" --- " for _ in HEADER) + "|"]
    lines.extend("| " + " | ".join(row.cells()) + " |" for row in rows)
    return "\n".join(lines)


def summarise(reports: list[WorldReport], threads: list[int], copies: int) -> list[Row]:
    rows = [Row("serial, in order", 1, 1), Row("serial again", 1, 1)]
    rows.extend(Row(f"shuffled x{copies}", n, copies) for n in threads)
    by_threads = {n: rows[2 + i] for i, n in enumerate(threads)}
    for report in reports:
        rows[0].add(report.serial)
        if report.serial_again is not None:
            rows[1].add(report.serial_again)
            rows[1].mismatches.update(d.category for d in report.determinism)  # the serial run against itself
        for run in report.parallel:
            by_threads[run.threads].add(run)
    return [row for row in rows if row.worlds]


def world_json(report: WorldReport) -> dict[str, Any]:
    def run(r: ProjectRun) -> dict[str, Any]:
        s = r.stats
        return {
            "project": r.project,
            "threads": r.threads,
            "copies": r.copies,
            "sent": s.sent,
            "webhooks": s.webhooks,
            "attempts": s.attempts,
            "retried_5xx": s.retried_5xx,
            "retried_connection": s.retried_connection,
            "conflicts": r.conflicts,
            "results": dict(s.results),
            "wall_seconds": round(s.wall_seconds, 3),
            "events_per_second": round(s.events_per_second, 2),
            "p50_ms": round(s.percentile(50) * 1000, 1),
            "p99_ms": round(s.percentile(99) * 1000, 1),
            "failures": s.failures,
            "invariant": r.invariant,
            "mismatches": [d.render(report.history.notes) for d in r.mismatches],
        }

    return {
        "seed": report.seed,
        "size": report.size.label,
        "history": report.history.describe(),
        "counts": report.history.counts,
        "generate_seconds": round(report.generate_seconds, 2),
        "serial": run(report.serial),
        "serial_again": run(report.serial_again) if report.serial_again else None,
        "determinism": [d.render(report.history.notes) for d in report.determinism],
        "emulator_deliveries": report.emulator_deliveries,
        "parallel": [run(r) for r in report.parallel],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sweep", default=DEFAULT_SWEEP, help=f"worlds, <size>:<seed>[-<seed>],... ({DEFAULT_SWEEP})")
    parser.add_argument("--threads", default="1,4,16", help="sender counts of the parallel runs (1,4,16)")
    parser.add_argument("--copies", type=int, default=3, help="deliveries of each event in a parallel run (3)")
    parser.add_argument("--out", type=Path, default=RESULTS / "reliability", help="results path without suffix")
    args = parser.parse_args(argv)
    worlds = parse_sweep(args.sweep)
    threads = [int(n) for n in args.threads.split(",") if n.strip()]

    started = time.perf_counter()
    reports: list[WorldReport] = []
    print(f"reliability sweep: {len(worlds)} worlds ({args.sweep}), threads {threads}, x{args.copies}", flush=True)
    with tempfile.TemporaryDirectory(prefix="reliability-") as logs, local_stack(Path(logs)) as stack:
        for size, seed in worlds:
            report = run_world(stack, seed, SIZES[size], threads=threads, copies=args.copies, prefix=f"{size}-")
            reports.append(report)
            print(report.render(), flush=True)
    elapsed = time.perf_counter() - started

    rows = summarise(reports, threads, args.copies)
    problems = [(report, problem) for report in reports for problem in report.problems()]
    when = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    lines = [
        f"# Reliability sweep, {when}",
        "",
        f"`python -m bench.reliability --sweep {args.sweep} --threads {args.threads} --copies {args.copies}`: "
        f"{len(reports)} worlds in {elapsed:.0f} s.",
        "",
        *(f"- {report.history.describe()}" for report in reports),
        "",
        table(rows),
        "",
        "Fault points: 5xx answers retried by the senders / connection errors retried / decisions the engine",
        "found raced and re-decided (its `decision raced` log lines) / duplicate deliveries answered.",
        "Latency: each webhook attempt, from sending to the answer read, under that many senders.",
        "",
        f"## Problems ({len(problems)})" if problems else "## Problems: none",
        "",
        *(f"- seed {report.seed}: {problem}" for report, problem in problems),
    ]
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    payload = {"when": when, "sweep": args.sweep, "threads": threads, "copies": args.copies, "seconds": elapsed}
    payload["worlds"] = [world_json(report) for report in reports]
    args.out.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    print(f"written: {args.out.with_suffix('.md')}, {args.out.with_suffix('.json')}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
