"""Logger, tracer and metrics shared by every function (Powertools; service name from the env)."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
