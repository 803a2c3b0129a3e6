"""Code shared by every Lambda function: domain logic and data access (one import root)."""
