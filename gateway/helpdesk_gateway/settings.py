"""Gateway settings, read once from the environment (the same names in every deployment)."""
from dataclasses import dataclass, field

from helpdesk_common.adapters.config import amqp_uri, env


REQUEST_THREADS = 16  # threads of a worker that live streams never take


def streams_for_threads(threads):
    """The live streams a worker of ``threads`` threads may hold: all but ``REQUEST_THREADS``, or half of a
    small worker's (as before: 8 of 16)."""
    return max(1, threads // 2, threads - REQUEST_THREADS)


@dataclass(frozen=True)
class Settings:
    amqp_uri: str = field(default_factory=amqp_uri)
    database_url: str = field(default_factory=lambda: env("HELPDESK_GATEWAY_DB_URL", "sqlite:///var/gateway.db"))
    bootstrap_token: str | None = field(default_factory=lambda: env("HELPDESK_BOOTSTRAP_TOKEN"))
    max_body_bytes: int = field(default_factory=lambda: int(env("HELPDESK_MAX_BODY_BYTES", 1_048_576)))
    rpc_timeout: float = field(default_factory=lambda: float(env("HELPDESK_RPC_TIMEOUT", 10)))
    rpc_pool_size: int = field(default_factory=lambda: int(env("HELPDESK_RPC_POOL_SIZE", 64)))
    # ``create_tickets`` calls in flight at once per worker (batching.py): each takes every request waiting.
    ticket_batch_lanes: int = field(default_factory=lambda: int(env("HELPDESK_TICKET_BATCH_LANES", 2)))
    # The services /health asks; a deployment that runs fewer lists them here.
    services: tuple = field(default_factory=lambda: tuple(
        name.strip() for name in env("HELPDESK_SERVICES", "tickets,intake,routing,kb_search").split(",") if name.strip()))
    token_cache_seconds: float = field(default_factory=lambda: float(env("HELPDESK_TOKEN_CACHE_SECONDS", 30)))
    # How long /health reuses its checks (each run opens a broker connection and pings every service).
    health_cache_seconds: float = field(default_factory=lambda: float(env("HELPDESK_HEALTH_CACHE_SECONDS", 5)))
    # The portal's suggestions while typing, answered from memory for this long (suggestions.py; 0: off).
    suggest_cache_seconds: float = field(default_factory=lambda: float(env("HELPDESK_SUGGEST_CACHE_SECONDS", 60)))
    suggest_cache_entries: int = field(default_factory=lambda: int(env("HELPDESK_SUGGEST_CACHE_ENTRIES", 10_000)))
    # Rate limits (ratelimits.py): where they are counted (redis://host:6379/0 shares them between workers and
    # replicas; memory:// counts per process) and the budgets, as Flask-Limiter strings.
    rate_limit_storage: str = field(default_factory=lambda: env("HELPDESK_RATE_LIMIT_STORAGE", "memory://"))
    rate_limit_token: str = field(default_factory=lambda: env("HELPDESK_RATE_LIMIT_TOKEN", "6000/minute"))
    rate_limit_anonymous: str = field(default_factory=lambda: env("HELPDESK_RATE_LIMIT_ANONYMOUS", "120/minute"))
    rate_limit_costly: str = field(default_factory=lambda: env("HELPDESK_RATE_LIMIT_COSTLY", "30/minute"))
    rate_limit_address: str = field(default_factory=lambda: env("HELPDESK_RATE_LIMIT_ADDRESS", "20000/minute"))
    # Reverse proxies in front of the gateway that append to X-Forwarded-For (0: clients connect directly).
    proxy_hops: int = field(default_factory=lambda: int(env("HELPDESK_PROXY_HOPS", 0)))
    # Open live streams (streams.py): per worker process (each holds a thread: all but 16 of them, or half for
    # fewer than 32, so that requests always have threads), per chat and per address; a slot is a lease of
    # the longest stream's life plus a minute.
    streams_per_worker: int = field(default_factory=lambda: int(env(
        "HELPDESK_STREAMS_PER_WORKER", streams_for_threads(int(env("HELPDESK_GATEWAY_THREADS", 64))))))
    streams_per_chat: int = field(default_factory=lambda: int(env("HELPDESK_STREAMS_PER_CHAT", 4)))
    streams_per_address: int = field(default_factory=lambda: int(env("HELPDESK_STREAMS_PER_ADDRESS", 10)))
    stream_lease_seconds: float = field(default_factory=lambda: 60 + max(
        float(env("HELPDESK_CHAT_STREAM_SECONDS", 300)), float(env("HELPDESK_LIVE_STREAM_SECONDS", 300))))
    # Prefix of the rate-limit and stream keys in the store (several installations may share one Redis).
    rate_limit_prefix: str = field(default_factory=lambda: env("HELPDESK_RATE_LIMIT_PREFIX", "helpdesk"))
