"""`python -m local.stack.rebuild <project> [--repair]` (`make rebuild-rollups PROJECT=<id> [REPAIR=1]`):
rebuild a project's rollups from its ledger in the running local stack (`make run`), as an operator
would on AWS: the job's report item is created and its message queued on the stack's BackfillQueue
(shared.backfill.rebuild_job.start), the stack's own backfill consumer runs it (BackfillFunction's
real handler, environment, timeout and role), and this command waits for its report and prints it.
A dry run (the default) only reports differences; --repair ADDs them to the rollups.

The stack's moto is reached at MOTO_PORT (start the stack with the same MOTO_PORT, or give the
port `make run` printed on its `moto` line); table and queue names come from the template, with the
stack's PARAMETER_OVERRIDES and TEMPLATE.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from shared.backfill import rebuild_job

from .__main__ import parameter_overrides
from .functions import merged_environment, read_functions
from .runner import FAKE_CREDENTIALS, local_parameters
from .template import ACCOUNT_ID, DEFAULT_TEMPLATE, REGION, STACK_NAME, Template, load_template

POLL_SECONDS = 0.5


def stack_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """What the stack's functions read (table and queue names), pointed at the stack's moto."""
    port = environ.get("MOTO_PORT", "").strip()
    if not port.isdigit():
        raise SystemExit(
            "MOTO_PORT must name the running stack's moto port: start it with `MOTO_PORT=<port> make run`, "
            "or pass the port of the `moto` line `make run` printed"
        )
    moto_url = f"http://127.0.0.1:{port}"
    data = load_template(environ.get("TEMPLATE") or DEFAULT_TEMPLATE)
    parameters = local_parameters(
        data,
        public_base_url="http://127.0.0.1",  # (names of tables and queues do not depend on it)
        stripe_api_base="",
        overrides=parameter_overrides(environ.get("PARAMETER_OVERRIDES", "")),
    )
    template = Template(
        data, parameters, stack_name=STACK_NAME, region=REGION, account_id=ACCOUNT_ID, sqs_endpoint=moto_url
    )
    environment = merged_environment(read_functions(template)) | FAKE_CREDENTIALS
    return environment | {"AWS_ENDPOINT_URL": moto_url, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}


def summary(report: Mapping[str, Any]) -> list[str]:
    """The report for people: one line per difference, then the counts."""
    lines = [
        f"{d['day']} shard {d['shard']}  {d['attribute']}: stored {d['stored']}, expected {d['expected']}"
        for d in report["differences"]
    ]
    if report["differences_found"] > len(report["differences"]):
        lines.append(f"... and {report['differences_found'] - len(report['differences'])} more (in the logs)")
    lines += [f"not settled (kept changing; run again): {item}" for item in report["unsettled"]]
    if report["repair"]:
        outcome = f"{report['items_repaired']} repaired"
    else:
        outcome = "dry run, nothing written (REPAIR=1 repairs)"
    lines.append(
        f"{report['status']}: {report['days_checked']} days checked, {report['differences_found']} differences "
        f"in {report['items_differing']} rollup items; {outcome}"
    )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m local.stack.rebuild", description="Rebuild a project's rollups from its ledger."
    )
    parser.add_argument("project", help="the project whose rollups are checked")
    parser.add_argument("--repair", action="store_true", help="repair the differences (default: report only)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the report")
    args = parser.parse_args(argv)
    os.environ.update(stack_environment(os.environ))
    try:
        job = rebuild_job.start(args.project, repair=args.repair)
    except Exception as failed:  # the stack's moto is not there (or not a stack's)
        sys.exit(f"could not queue the rebuild in the stack at {os.environ['AWS_ENDPOINT_URL']}: {failed}")
    print(f"rebuild {job} of project {args.project} queued ({'repair' if args.repair else 'dry run'})", flush=True)
    deadline = time.monotonic() + args.timeout
    while True:
        report = rebuild_job.report(args.project, job)
        if report is not None and report["status"] != "running":
            break
        if time.monotonic() > deadline:
            sys.exit(f"the rebuild has not finished after {args.timeout:.0f} s: is the stack's consumer running?")
        time.sleep(POLL_SECONDS)
    for line in summary(report):
        print(line)
    print(json.dumps(report), flush=True)
    if report["status"] != "completed":
        sys.exit(f"the rebuild {report['status']}: {report['error']}")


if __name__ == "__main__":
    main()
