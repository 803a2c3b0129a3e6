"""`python -m local.stripe_emulator [--host H] [--port P]`: the emulator, standalone."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from .server import start


def main() -> None:
    parser = argparse.ArgumentParser(description="Stripe API emulator for local development and tests")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("STRIPE_EMULATOR_PORT", "12111")))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    running = start(args.host, args.port)
    logging.getLogger("stripe_emulator").info("listening on %s", running.base_url)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        running.thread.join()
    except (KeyboardInterrupt, SystemExit):
        running.stop()
    # All state is in memory and worthless now: skip freeing millions of seeded objects one by one.
    logging.shutdown()
    os._exit(0)


if __name__ == "__main__":
    main()
