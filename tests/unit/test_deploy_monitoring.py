"""The Grafana dashboard and Prometheus alert rules under deploy/ query only metrics the engine
really exports, and every metric an alert uses really gets a value: renaming a metric in
engine/obs/metrics.py without updating them, or no longer recording one, fails here."""

import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from connectors.delivery import Delivery
from engine.obs.metrics import Metrics
from engine.sdk.rule import Context, Proposal, on, rule
from engine.sdk.ruleset import RuleSet
from engine.testing import Scenario
from tests.helpers import unavailable

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "kairos-alerts.yml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "kairos-alerts.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "kairos-dashboard.json"
# Not ours: the Kafka exporter's consumer-group series (kafka_exporter naming).
EXTERNAL = {"kafka_consumergroup_lag", "kafka_consumergroup_members"}
# Alert metrics an embedded run cannot give a value, and where they are checked instead.
NOT_EMBEDDED = {
    # The Kafka exporter's, about the broker's consumer groups: no Kairos process exports them.
    "kafka_consumergroup_lag": "kafka_exporter",
    "kafka_consumergroup_members": "kafka_exporter",
    # `kairos connect`'s: delivering takes Redis (leases, sent marks), so the integration tests
    # read their values after real deliveries (test_delivery.py, test_end_to_end.py).
    "kairos_deliveries_total": "tests/integration/test_delivery.py",
    "kairos_breaker_open": "tests/integration/test_delivery.py",
    "kairos_connector_redis_up": "tests/integration/test_redis_outage.py",
}
METRIC = re.compile(r"\b((?:kairos|kafka)_[a-z0-9_]+)")
# The per-rule figures the console's Rules page reads (the health alerts use the counters).
RULE_FIGURES = ("kairos_rule_seconds_bucket", "kairos_rule_seconds_count",
                "kairos_rule_last_fired_timestamp_seconds", "kairos_rule_exposures_total",
                "kairos_rule_conversions_total")
# Grafana's variables, replaced by what they stand for so promtool can parse the queries.
VARIABLES = {"$__rate_interval": "5m", "$instance": ".*", "$consumergroup": "kairos"}


def exported() -> dict[str, set[str]]:
    """Series name -> label names, as Prometheus scrapes them from a worker and a connector."""
    out: dict[str, set[str]] = {}
    connector = Delivery(channels={}, redis=None, emit_outcome=None, dead_letter=None)  # type: ignore[arg-type]
    for family in [*Metrics().collect(), *connector.collect()]:
        labels = set(getattr(family, "_labelnames", ()))
        if isinstance(family, HistogramMetricFamily):
            out[f"{family.name}_bucket"] = labels | {"le"}
            out[f"{family.name}_sum"] = out[f"{family.name}_count"] = labels
        elif isinstance(family, CounterMetricFamily):
            out[f"{family.name}_total"] = labels
        else:
            out[family.name] = labels
    return out


def alert_rules() -> list[dict]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[tuple[str, str]]:
    doc = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in doc["panels"] for t in p.get("targets", [])]


def check(where: str, expr: str, series: dict[str, set[str]]) -> None:
    names = METRIC.findall(expr)
    assert names, f"{where}: no metric in {expr!r}"
    for name in names:
        assert name in series or name in EXTERNAL, (
            f"{where}: {name!r} is not exported (engine/obs/metrics.py exports {sorted(series)})"
        )
    for name, matchers in re.findall(r"\b(kairos_[a-z0-9_]+)\{([^}]*)\}", expr):
        for label in re.findall(r"([a-z_]+)\s*(?:=~|!~|!=|=)", matchers):
            assert label in series[name] | {"instance", "job"}, (
                f"{where}: {name} has no label {label!r} (it has {sorted(series[name])})"
            )


def test_the_engine_exports_what_the_docs_promise():
    series = exported()
    for name in ("kairos_events_consumed_total", "kairos_actions_total",
                 "kairos_dead_letters_total", "kairos_decision_latency_seconds_bucket",
                 "kairos_timers_pending", "kairos_contact_state_bytes_bucket",
                 "kairos_suppressions_total", *RULE_FIGURES):
        assert name in series
    assert "rule" in series["kairos_rule_seconds_bucket"]
    assert series["kairos_rule_exposures_total"] == {"rule", "arm"}
    assert series["kairos_rule_conversions_total"] == {"rule", "arm"}


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_every_alert_queries_exported_metrics(rule):
    check(f"alert {rule['alert']}", rule["expr"], exported())
    assert rule["labels"]["severity"] in ("info", "warning", "critical")
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_alerts_cover_lag_latency_dead_letters_and_connectors():
    exprs = {r["alert"]: r["expr"] for r in alert_rules()}
    text = " ".join(exprs.values())
    assert "kafka_consumergroup_lag" in text
    assert "kairos_decision_latency_seconds_bucket" in text
    assert "kairos_dead_letters_total" in text
    assert any("connect" in name.lower() for name in exprs)
    assert "kairos_deliveries_total" in text and "kairos_breaker_open" in text


def test_every_rule_health_alert_is_labelled_by_rule():
    doc = yaml.safe_load(ALERTS.read_text())
    [group] = [g for g in doc["groups"] if g["name"] == "kairos-rules"]
    names = {r["alert"] for r in group["rules"]}
    assert names == {"KairosRuleStoppedFiring", "KairosRuleErroring", "KairosRuleSuppressedMostly"}
    for r in group["rules"]:
        assert "by (rule)" in r["expr"] and "{{ $labels.rule }}" in r["annotations"]["summary"]
        assert "Rules page" in r["annotations"]["description"]


@pytest.mark.parametrize(("title", "expr"), dashboard_queries(), ids=lambda x: str(x)[:40])
def test_every_dashboard_query_uses_exported_metrics(title, expr):
    check(f"panel {title!r}", expr, exported())


def test_dashboard_is_importable():
    doc = json.loads(DASHBOARD.read_text())
    assert doc["uid"] and doc["title"] and doc["schemaVersion"] >= 30
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    used = {v for _, e in dashboard_queries() for v in re.findall(r"\$[a-z_]+", e)}
    declared = {f"${v['name']}" for v in doc["templating"]["list"]} | {"$__rate_interval"}
    assert used <= declared


@rule("raises", triggers=[on("track", "Signed Up")])
def raises(ctx: Context) -> Proposal:
    raise RuntimeError("a rule bug")


def embedded_values() -> Counter[str]:
    """Sample name -> sum of its values after a small embedded run with every kind of traffic an
    alert or the console watches: events, decisions, a rule that raises, purchases after
    actions, a contact who did not consent (suppressions), and an input that is not JSON."""
    s = Scenario(RuleSet([*RuleSet.load().rules.values(), raises]), rule_errors="record")
    for user in ("u1", "u2", "u3"):
        s.identify(user, email=f"{user}@example.com", consent={"email": user != "u3"})
        s.track(user, "Product Added", properties={"product_id": "sku-1"})
        s.track(user, "Signed Up")
        s.advance(hours=1)
        s.track(user, "Order Completed", properties={"order_id": f"o-{user}", "revenue": 10})
    s.send(b"{not json")
    s.runtime.flush()
    values: Counter[str] = Counter()
    for family in s.runtime.pipeline.metrics.registry.collect():
        for sample in family.samples:
            values[sample.name] += sample.value
    return values


def test_every_metric_an_alert_uses_gets_a_value_from_traffic():
    values = embedded_values()
    used = {name for r in alert_rules() for name in METRIC.findall(r["expr"])}
    assert used - NOT_EMBEDDED.keys(), "no alert on an engine metric"
    for name in sorted(used - NOT_EMBEDDED.keys()):
        assert values[name] > 0, f"{name} is never recorded: its alerts can never fire"


def test_every_rule_figure_gets_a_value_from_traffic():
    values = embedded_values()
    for name in RULE_FIGURES:
        assert values[name] > 0, f"{name} is never recorded: the console shows nothing"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        unavailable("promtool not installed: `make test` installs it (deploy/prometheus/promtool.sh)")
    return found


def test_promtool_accepts_the_rules_and_every_dashboard_query(tmp_path):
    tool = promtool()
    ok = subprocess.run([tool, "check", "rules", str(ALERTS)], capture_output=True,
                        text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    queries = []
    for i, (title, expr) in enumerate(dashboard_queries()):
        for var, value in VARIABLES.items():
            expr = expr.replace(var, value)
        queries.append({"record": f"dashboard:query{i}", "expr": expr,
                        "labels": {"panel": title}})
    rules = tmp_path / "dashboard-rules.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": queries}]}))
    ok = subprocess.run([tool, "check", "rules", str(rules)], capture_output=True,
                        text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_promtool_proves_each_rule_alert_fires_when_it_should_and_only_then():
    ok = subprocess.run([promtool(), "test", "rules", str(ALERT_TESTS)], capture_output=True,
                        text=True, check=False, cwd=ALERT_TESTS.parent)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    tested = set(re.findall(r"alertname: (\w+)", ALERT_TESTS.read_text()))
    assert tested == {"KairosRuleStoppedFiring", "KairosRuleErroring", "KairosRuleSuppressedMostly"}
