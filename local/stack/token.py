"""Prints a local dashboard token: `python -m local.stack.token <project> [<project>...]` (`make token PROJECT=p1`).

Signed with LOCAL_JWT_SECRET (default `local-dev-secret`), the secret the local stack checks.
"""

from __future__ import annotations

import argparse
import os

from .auth import DEFAULT_TTL_SECONDS, issue_token, secret_from


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.stack.token", description="Print a local dashboard token.")
    parser.add_argument("projects", nargs="+", help="project ids the token gives access to (claim `projects`)")
    parser.add_argument("--hours", type=float, default=DEFAULT_TTL_SECONDS / 3600, help="lifetime (default 12)")
    parser.add_argument("--subject", default="local-developer", help="claim `sub`")
    args = parser.parse_args(argv)
    token = issue_token(
        args.projects, secret_from(os.environ), ttl_seconds=int(args.hours * 3600), subject=args.subject
    )
    print(token)


if __name__ == "__main__":
    main()
