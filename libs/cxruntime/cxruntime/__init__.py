"""Shared runtime of the cxloop services: settings, Kafka, the consumer runner, PostgreSQL,
migrations, API keys, HTTP operations endpoints, the embedded servers and the `cxloop` CLI.

Business logic lives in the services; this package holds only what every service runs on.
"""
