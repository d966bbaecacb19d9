"""Prometheus metrics, the same names in both runtimes (Prometheus naming conventions)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class Metrics:
    """One registry per engine, so several engines in one process (tests) do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "kairos_events_consumed", "Input events consumed, per source topic.", ["topic"],
            registry=r,
        )
        self.actions = Counter(
            "kairos_actions", "Next best actions decided, per rule and channel.",
            ["rule", "channel"], registry=r,
        )
        self.dead_letters = Counter(
            "kairos_dead_letters", "Inputs sent to the dead-letter sink, per reason.", ["reason"],
            registry=r,
        )
        self.duplicates = Counter(
            "kairos_duplicate_events", "Events already decided once, ignored.", registry=r
        )
        self.decision_latency = Histogram(
            "kairos_decision_latency_seconds",
            "Time to decide one message for one contact (core + state read/write).",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
            registry=r,
        )
        self.state_bytes = Histogram(
            "kairos_contact_state_bytes", "Encoded size of a contact's state when written.",
            buckets=(256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536), registry=r,
        )
        self.timers_pending = Gauge(
            "kairos_timers_pending", "Timers indexed by this process.", registry=r
        )

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        """Expose `/metrics` over HTTP (a daemon thread, so it never blocks the loop)."""
        start_http_server(port, addr=addr, registry=self.registry)
