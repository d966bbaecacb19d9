"""What SREs watch: Prometheus metrics and structured, redacted logs."""

from engine.obs.logs import setup as setup_logs
from engine.obs.metrics import Metrics

__all__ = ["Metrics", "setup_logs"]
