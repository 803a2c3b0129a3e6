"""The local stack: the template's functions behind a local HTTP API, moto, the Stripe emulator.

`python -m local.stack` (`make run`) serves it until Ctrl-C / SIGTERM; `runner.start_stack()` runs it
in threads of the calling process (tests); `python -m local.stack.token <project>` prints a dashboard token.
Everything it creates and configures comes from template.yaml, so local and deployed cannot drift.
"""
