"""The viewers the intake tests act as (what the gateway passes for an admin and an agent)."""
ADMIN = {"actor": "test-admin", "role": "admin"}
AGENT = {"actor": "agent-7", "role": "agent"}
