"""One typed settings object, read from `KAIROS_*` environment variables (documented in README)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import msgspec

from engine.core.policy import DEFAULT_POLICY, Policy
from engine.errors import SettingsError
from engine.sdk.ruleset import DEFAULT_RULES_DIR
from engine.topics import DEFAULT_INPUTS, Topics

SECRETS = frozenset({"write_keys", "social_webhook_secret", "smtp_password", "sms_auth",
                     "push_auth", "webhook_secret", "mailgun_signing_key",
                     "console_users", "contact_id_key", "read_keys", "web_token_secret",
                     "link_secret"})
CREDENTIALS_IN_URL = re.compile(r"//[^/@]*@")


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    broker: str = "kafka://127.0.0.1:9092"
    app_id: str = "kairos"
    data_dir: Path = Path(".kairos")
    rules_dir: Path = DEFAULT_RULES_DIR
    policy: Path | None = None  # a TOML contact policy (docs/policy.md); built-in defaults if unset
    topic_clickstream: str = DEFAULT_INPUTS["clickstream"]
    topic_email: str = DEFAULT_INPUTS["email"]
    topic_social: str = DEFAULT_INPUTS["social"]
    topic_actions: str = "next-best-actions"
    topic_shadow_actions: str = "kairos-shadow-actions"  # rules in shadow mode (docs/rules.md)
    topic_dead_letters: str = "kairos-dead-letters"
    topic_rules: str = "kairos-rules"
    topic_erasure: str = "kairos-erasure"  # right-to-be-forgotten requests (docs/privacy.md)
    partitions: int = 4
    replication_factor: int = 1
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    # The worker's group consumer and producer: aiokafka, or librdkafka through confluent-kafka.
    kafka_client: Literal["aiokafka", "confluent"] = "aiokafka"
    # `kairos worker`'s runtime: the batch runtime, or Faust agents (docs/operations.md).
    runtime: Literal["batch", "faust"] = "batch"
    metrics_port: int = 9464
    metrics_addr: str = "127.0.0.1"
    connect_metrics_port: int = 9465  # `kairos connect`'s /metrics (0: none)
    web_port: int = 6066
    # `kairos console`: the workers' /metrics it scrapes and sums, comma separated.
    console_metrics: str = "http://127.0.0.1:9464/metrics"
    timer_interval: float = 0.25
    # Seconds between offset commits (after every record sent since was acknowledged): longer
    # means fewer round trips and more events re-decided (same action ids) after a crash.
    commit_interval: float = 0.1
    # Seconds the broker has to acknowledge a commit's records and offsets; past it the worker
    # drops its uncommitted work, waits for the broker and starts over from the committed offsets.
    broker_timeout: float = 20.0
    # A worker that dies without leaving the group holds its partitions this long.
    session_timeout: float = 10.0
    # 1: every worker also tails the changelogs of partitions it does not own into its tables,
    # so taking over a dead worker's partitions restores seconds of changes, not all of them.
    standby_replicas: int = 0
    # Decoded contact states a worker keeps in memory (about 5 KB each): busy contacts skip a
    # RocksDB read and a decode per event; beyond it, the oldest half is written back and dropped.
    state_cache: int = 100_000
    # HTTP collector and connectors (docs/connectors.md); secrets come only from the environment.
    http: str = "127.0.0.1:8080"
    write_keys: str = ""  # comma-separated Segment write keys accepted by the collector
    sendgrid_public_key: str = ""  # base64 DER public key of the email provider's webhook
    social_webhook_secret: str = ""
    mailgun_signing_key: str = ""  # Mailgun's HTTP webhook signing key (docs/connectors.md)
    # The console (docs/console.md): name:password or name:scrypt$... entries, comma-separated,
    # and the users among them who may see emails and phone numbers unmasked.
    console_users: str = ""
    console_unmasked: str = ""
    # Keys new contact ids (docs/privacy.md): changing it starts new contacts for everyone.
    contact_id_key: str = ""
    # The web channel's reads (docs/connectors.md): the site's servers use a read key (Bearer),
    # browsers a visitor token the site signed with the token secret, valid at most this long.
    read_keys: str = ""
    web_token_secret: str = ""
    web_token_max_age: float = 3600.0
    web_origins: str = ""  # comma-separated origins browsers may read their action from
    redis_url: str = "redis://127.0.0.1:6379/0"
    topic_outcomes: str = DEFAULT_INPUTS["outcome"]
    topic_catalogue: str = DEFAULT_INPUTS["catalogue"]  # items' prices and stock (docs/events.md)
    topic_crm: str = "kairos-crm-tasks"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_from: str = "Kairos <no-reply@localhost>"
    # Signed links (docs/connectors.md): the HMAC secret, the collector's public base URL the
    # links point at, the domain of the mailto unsubscribe address, and how long an unsubscribe
    # link keeps working.
    link_secret: str = ""
    public_url: str = ""
    unsubscribe_domain: str = ""
    unsubscribe_days: float = 60.0
    # Message templates (docs/connectors.md): `<rules dir>/templates` unless set; the locale
    # money and dates are formatted for when a contact has none; SMS parts a text may take.
    templates_dir: Path | None = None
    templates_locale: str = "en_US"
    sms_max_segments: int = 3
    sms_url: str = ""  # a generic HTTP provider: POST JSON {to, text, action_id, ...}
    sms_auth: str = ""  # sent as the Authorization header
    push_url: str = ""
    push_auth: str = ""
    webhook_url: str = ""
    webhook_secret: str = ""
    webhook_channel: str = "crm"  # the action channel `kairos connect webhook` delivers
    crm_url: str = ""  # empty: CRM tasks go to topic_crm
    print_dir: Path = Path(".kairos/print")
    rate_limits: str = ""  # "sms=10,push=50": sends per second per provider, all processes
    delivery_attempts: int = 5
    # Seconds a provider's circuit breaker may stay open before the actions waiting for it are
    # reported failed for good, so the engine offers their next channel (docs/connectors.md).
    fallback_after: float = 300.0
    # Tracked links in SMS and push (docs/connectors.md), on `public_url` and signed with
    # `link_secret` as above: how long one keeps working.
    link_ttl_days: float = 30.0
    # Seconds a connector waits for an unreachable Redis (its idempotency records) before it
    # stops without committing; the actions are then redelivered (docs/reliability.md).
    redis_outage_limit: float = 600.0

    def __repr__(self) -> str:
        """Settings end up in logs and tracebacks: secrets never do."""
        def show(field: str) -> str:
            value = getattr(self, field)
            if field in SECRETS and value:
                return "'***'"
            return CREDENTIALS_IN_URL.sub("//***@", repr(value))

        return f"Settings({', '.join(f'{f}={show(f)}' for f in self.__struct_fields__)})"

    __str__ = __repr__

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Each field from `KAIROS_<FIELD>` when set, converted to the field's type."""
        env = dict(os.environ) if env is None else env
        given = {
            f: env[f"KAIROS_{f.upper()}"]
            for f in cls.__struct_fields__
            if f"KAIROS_{f.upper()}" in env
        }
        try:
            return msgspec.convert(given, cls, strict=False, dec_hook=_to_path)
        except msgspec.ValidationError as exc:  # "... - at `$.field`": name the variable instead
            text = str(exc)
            field = text.rsplit("`$.", 1)[-1].rstrip("`") if "`$." in text else ""
            what = text.split(" - at ")[0]
            raise SettingsError(f"KAIROS_{field.upper()}: {what}" if field else text) from None

    def load_policy(self) -> Policy:
        """The contact policy, with new contact ids keyed by `contact_id_key` when it is set."""
        policy = Policy.load(self.policy) if self.policy else DEFAULT_POLICY
        if not self.contact_id_key:
            return policy
        try:
            identity = policy.identity.keyed(self.contact_id_key)
        except msgspec.ValidationError as exc:
            raise SettingsError(f"KAIROS_CONTACT_ID_KEY: {str(exc).split(' - at ')[0]}") from None
        return msgspec.structs.replace(policy, identity=identity)

    @property
    def bootstrap(self) -> str:
        """`host:port[,host:port]` for plain Kafka clients (the URL without its scheme)."""
        return self.broker.split("://", 1)[-1]

    @property
    def topics(self) -> Topics:
        """Every topic this application reads and writes (engine/topics.py)."""
        return Topics(
            app_id=self.app_id,
            sources={"clickstream": self.topic_clickstream, "email": self.topic_email,
                     "social": self.topic_social, "outcome": self.topic_outcomes,
                     "catalogue": self.topic_catalogue},
            actions=self.topic_actions, dead_letters=self.topic_dead_letters,
            rules=self.topic_rules, erasure=self.topic_erasure, crm=self.topic_crm,
            shadow_actions=self.topic_shadow_actions,
        )


def _to_path(kind: type, value: object) -> object:
    if kind is Path and isinstance(value, str):
        return Path(value) if value else None
    raise NotImplementedError(kind)
