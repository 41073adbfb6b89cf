"""Gateway settings, read once from the environment (the same names in every deployment)."""
from dataclasses import dataclass, field

from helpdesk_common.adapters.config import amqp_uri, env


@dataclass(frozen=True)
class Settings:
    amqp_uri: str = field(default_factory=amqp_uri)
    database_url: str = field(default_factory=lambda: env("HELPDESK_GATEWAY_DB_URL", "sqlite:///var/gateway.db"))
    bootstrap_token: str | None = field(default_factory=lambda: env("HELPDESK_BOOTSTRAP_TOKEN"))
    max_body_bytes: int = field(default_factory=lambda: int(env("HELPDESK_MAX_BODY_BYTES", 1_048_576)))
    rpc_timeout: float = field(default_factory=lambda: float(env("HELPDESK_RPC_TIMEOUT", 10)))
    rpc_pool_size: int = field(default_factory=lambda: int(env("HELPDESK_RPC_POOL_SIZE", 64)))
    # The services /health asks; a deployment that runs fewer lists them here.
    services: tuple = field(default_factory=lambda: tuple(
        name.strip() for name in env("HELPDESK_SERVICES", "tickets,intake,routing,kb_search").split(",") if name.strip()))
    token_cache_seconds: float = field(default_factory=lambda: float(env("HELPDESK_TOKEN_CACHE_SECONDS", 30)))
    # How long /health reuses its checks (each run opens a broker connection and pings every service).
    health_cache_seconds: float = field(default_factory=lambda: float(env("HELPDESK_HEALTH_CACHE_SECONDS", 5)))
