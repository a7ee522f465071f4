"""Prometheus metrics of one service instance (its own registry, so tests can build many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

KNOWN_PATHS = {
    "/",
    "/ask",
    "/search",
    "/similar",
    "/articles",
    "/v1/embeddings",
    "/healthz",
    "/readyz",
    "/stats",
    "/metrics",
    "/docs",
    "/openapi.json",
}


def endpoint_label(path: str) -> str:
    """Route templates, not raw paths: unknown ids must not create new time series."""
    if path in KNOWN_PATHS:
        return path
    if path.startswith("/articles/"):
        return "/articles/{article_id}"
    return "other"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "newsqa_requests",
            "HTTP requests by endpoint, method and status",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "newsqa_request_seconds",
            "HTTP request latency by endpoint",
            ["endpoint"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.articles = Gauge(
            "newsqa_index_articles", "articles in the index", registry=self.registry
        )
        self.passages = Gauge(
            "newsqa_index_passages", "passages in the index", registry=self.registry
        )
        self.model = Gauge(
            "newsqa_model_info",
            "the embedding model (value 1)",
            ["model", "dimension"],
            registry=self.registry,
        )
        self.shard_passages = Gauge(
            "newsqa_shard_passages",
            "passages in each shard of a sharded index",
            ["shard"],
            registry=self.registry,
        )
        self.shard_replicas = Gauge(
            "newsqa_shard_replicas",
            "replicas of each shard by state (RUNNING, STARTING, ...; IN_PROCESS: no Ray)",
            ["shard", "state"],
            registry=self.registry,
        )

    def observe(self, path: str, method: str, status: int, seconds: float) -> None:
        label = endpoint_label(path)
        self.requests.labels(label, method, str(status)).inc()
        self.latency.labels(label).observe(seconds)

    def refresh(self, state) -> None:
        engine = state.engine
        if engine is not None:
            self.articles.set(len(engine.index.articles))
            self.passages.set(len(engine.index.passages))
            self.shard_replicas.clear()  # replicas come and go: no stale series
            for shard in engine.index.topology() or ():
                self.shard_passages.labels(shard["shard"]).set(shard["passages"])
                for state_name, n in shard["replicas"].items():
                    self.shard_replicas.labels(shard["shard"], state_name).set(n)
        if state.embedder is not None:
            ident = state.embedder.identity
            self.model.labels(ident.name, str(ident.dimension)).set(1)
