"""`python -m local.stack.reconcile` (`make reconcile`): the scheduled reconcile, once, in the running
local stack (`make run` on PORT, default 8000), as its EventBridge schedule invokes it when deployed:
ReconcileFunction's real handler with the stack's environment, timeout and role. Prints its summary.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request

from .schedules import SCHEDULES_PATH

FUNCTION = "ReconcileFunction"


def main() -> None:
    base_url = f"http://127.0.0.1:{os.environ.get('PORT') or 8000}"
    request = urllib.request.Request(f"{base_url}{SCHEDULES_PATH}{FUNCTION}", data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=960) as response:  # the function's own timeout bounds it
            print(json.dumps(json.loads(response.read())), flush=True)
    except urllib.error.HTTPError as failed:
        sys.exit(f"the reconcile failed ({failed.code}): {failed.read().decode(errors='replace')}")
    except OSError:
        sys.exit(f"no local stack answers at {base_url}: start it with `make run` (same PORT)")


if __name__ == "__main__":
    main()
