"""IAM as AWS enforces it, for the local stack and the tests: each function's calls are checked
against the role template.yaml gives it (expanded by aws-sam-translator, as `sam deploy` would).

moto allows every call, and its own IAM cannot scope DynamoDB or Secrets Manager statements to a
resource (../shared/design/aws.md), so the check runs in a botocore hook on every client of the
process: `roles` reads the roles, `policy` evaluates statements, `requests` names what a request
needs, `identity` says which function is calling, `enforcement` ties them together.
"""
