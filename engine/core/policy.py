"""The contact policy: consent, caps, quiet hours, suppressions, holdouts and ranking levers.

One typed object, loaded from a TOML file (`KAIROS_POLICY`), so arbitration and its tests see
every knob in one place. Every setting has a documented default (docs/policy.md); settings
per channel and per rule override the global ones.

    [channels.email]
    daily_cap = 2
    weekly_cap = 5
    quiet_hours = ["21:00", "08:00"]

    [rules.cart-abandoned]
    holdout = 0.10
    group = "offers"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import msgspec

from engine.errors import PolicyError
from engine.model.actions import CHANNELS

DAY = 86_400.0


class ChannelPolicy(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    # What silence means for marketing: opt-in needed (False) or opt-out (True).
    consent_default: bool = False
    # Existing customers (a purchase on record) may receive marketing without prior consent,
    # unless they objected (a withdrawal on the channel or the group).
    soft_opt_in: bool = False
    daily_cap: int | None = None  # marketing actions per rolling 24 h on this channel
    weekly_cap: int | None = None  # … per rolling 7 days
    quiet_hours: tuple[str, str] | None = None  # local "HH:MM" start, end (may wrap midnight)
    lever: float = 1.0  # multiplies the score of actions on this channel
    prior: tuple[float, float] = (1.0, 4.0)  # Beta(alpha, beta) prior of a positive outcome
    # Days without a positive outcome after which an action here is ignored; None: the global
    # `ignored_after_days`, 0: never (a channel that reports no opens or clicks).
    ignored_after_days: float | None = None


DEFAULT_CHANNELS = {
    "email": ChannelPolicy(soft_opt_in=True, daily_cap=2, weekly_cap=5,
                           quiet_hours=("21:00", "08:00")),
    "sms": ChannelPolicy(daily_cap=1, weekly_cap=2, quiet_hours=("20:00", "09:00")),
    "push": ChannelPolicy(daily_cap=2, weekly_cap=6, quiet_hours=("21:00", "08:00")),
    # Web, CRM and print report no opens or clicks: silence there is no sign of being ignored.
    "web": ChannelPolicy(consent_default=True, ignored_after_days=0),  # the contact's own visit
    "crm": ChannelPolicy(consent_default=True, ignored_after_days=0),  # sales ask for themselves
    "print": ChannelPolicy(weekly_cap=1, ignored_after_days=0),
}


class RulePolicy(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    holdout: float = 0.0  # share of contacts held out of this rule, on top of the global one
    lever: float = 1.0
    action_class: str | None = None  # overrides the class the rule's proposals carry
    group: str | None = None  # overrides the subscription group the rule's proposals name


# Identifier kinds, strongest first: a userId is a person, an email or a social handle is strong
# but may be shared (a family address), an anonymousId is a device or browser.
IDENTIFIER_KINDS = ("user", "email", "handle", "anon")
MAX_KEY_BYTES = 64  # blake2b's longest key
Wins = Literal["holder", "newest"]


class IdentityPolicy(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """`[identity]`: how many identifiers of each kind one contact holds, and who keeps an
    identifier two people claim. Two different userIds are never merged, whatever is set."""

    # Most identifiers of a kind per contact (handles: per network); a kind left out is unlimited.
    limits: dict[str, int] = msgspec.field(
        default_factory=lambda: {"user": 1, "email": 5, "handle": 5}
    )
    # On a conflict (another person's contact holds it, or a contact is at its limit): "holder"
    # keeps it where it is and refuses the newcomer; "newest" gives it to the newest claimant
    # (a shared browser follows whoever logged in last; the oldest beyond a limit is dropped).
    wins: dict[str, Wins] = msgspec.field(
        default_factory=lambda: {"user": "holder", "email": "holder", "handle": "holder",
                                 "anon": "newest"}
    )
    # The secret new contact ids are keyed with (`KAIROS_CONTACT_ID_KEY`, never a policy file),
    # so nobody can compute a person's contact id from their email; empty: unkeyed, as before.
    contact_id_key: str = ""

    def __post_init__(self) -> None:
        for where, kinds in (("limits", self.limits), ("wins", self.wins)):
            for kind in kinds:
                if kind not in IDENTIFIER_KINDS:
                    raise ValueError(f"policy: unknown identifier kind {kind!r} - at "
                                     f"`$.identity.{where}.{kind}`")
        if self.limits.get("user", 1) != 1 or self.wins.get("user", "holder") != "holder":
            raise ValueError("policy: a contact holds one userId and keeps it (a userId is a "
                             "person) - at `$.identity.limits.user`")
        if any(n < 1 for n in self.limits.values()):
            raise ValueError("policy: an identifier limit is at least 1 - at `$.identity.limits`")
        if len(self.contact_id_key.encode()) > MAX_KEY_BYTES:
            raise ValueError(f"policy: a contact id key is at most {MAX_KEY_BYTES} bytes "
                             "- at `$.identity.contact_id_key`")

    def __repr__(self) -> str:
        """Policies end up in logs and tracebacks: the contact id key never does."""
        key = "'***'" if self.contact_id_key else "''"
        return f"IdentityPolicy(limits={self.limits!r}, wins={self.wins!r}, contact_id_key={key})"

    def keyed(self, key: str) -> IdentityPolicy:
        """This policy with new contact ids keyed by `key` (validated as a decoded one is)."""
        return msgspec.convert({**msgspec.to_builtins(self), "contact_id_key": key},
                               IdentityPolicy)

    def limit(self, kind: str) -> int | None:
        return self.limits.get(kind)

    def newest_wins(self, kind: str) -> bool:
        return self.wins.get(kind, "holder") == "newest"


class Policy(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    max_actions_per_decision: int = 1
    global_daily_cap: int | None = 4  # marketing actions per contact per 24 h, all channels
    global_weekly_cap: int | None = 10
    holdout: float = 0.0  # global control group share, by a hash of the contact id
    holdout_salt: str = "kairos"
    negative_outcomes: int = 3  # this many negative outcomes in a row for an action ...
    suppress_days: float = 30.0  # ... suppress that action for this long
    conversion_window_days: float = 7.0  # a purchase this soon after an action converts it
    # An action with no open, click or purchase this long after it was sent counts as ignored:
    # a negative outcome, like a bounce (0: never judged ignored).
    ignored_after_days: float = 7.0
    # Segment consent categories (`context.consent.categoryPreferences`) -> what they govern:
    # a channel (`email`) or one subscription group of a channel (`email/newsletter`).
    consent_categories: dict[str, tuple[str, ...]] = msgspec.field(
        default_factory=lambda: {
            "Advertising": ("email", "sms", "push", "print"),
            "Marketing": ("email", "sms", "push", "print"),
            "Personalization": ("web",),
            "Functional": ("web",),
        }
    )
    channels: dict[str, ChannelPolicy] = msgspec.field(
        default_factory=lambda: dict(DEFAULT_CHANNELS)
    )
    rules: dict[str, RulePolicy] = {}
    identity: IdentityPolicy = msgspec.field(default_factory=IdentityPolicy)
    # The email provider's unsubscribe groups (SendGrid `asm_group_id`) by the name proposals
    # use (`group = "newsletter"`); an unnamed id is its own name ("4242").
    email_groups: dict[str, int] = {}

    def __post_init__(self) -> None:
        for ch in self.channels:
            if ch not in CHANNELS:
                raise ValueError(f"policy: unknown channel {ch!r} - at `$.channels.{ch}`")
        for name, keys in self.consent_categories.items():
            for key in keys:
                if not self.is_consent_key(key):
                    raise ValueError(
                        f"policy: unknown channel {key.partition('/')[0]!r} "
                        f"- at `$.consent_categories.{name}`"
                    )
        for share, where in [(self.holdout, "$.holdout")] + [
            (r.holdout, f"$.rules.{rid}.holdout") for rid, r in self.rules.items()
        ]:
            if not 0.0 <= share < 1.0:
                raise ValueError(f"policy: a holdout is a share in [0, 1) - at `{where}`")

    @staticmethod
    def is_consent_key(key: str) -> bool:
        """`email` (the whole channel) or `email/newsletter` (one subscription group)."""
        channel, slash, group = key.partition("/")
        return channel in CHANNELS and (not slash or bool(group))

    def channel(self, name: str) -> ChannelPolicy:
        """A channel's settings; one left out keeps its defaults (SMS stays opt-in)."""
        return self.channels.get(name) or DEFAULT_CHANNELS[name]

    def ignored_window(self, channel: str) -> float:
        """Seconds after which an action on the channel with no positive outcome is ignored
        (0: never)."""
        days = self.channel(channel).ignored_after_days
        return (self.ignored_after_days if days is None else days) * DAY

    def rule(self, rule_id: str) -> RulePolicy:
        return self.rules.get(rule_id) or _DEFAULT_RULE

    @classmethod
    def load(cls, path: Path) -> Policy:
        """A policy file overrides the defaults field by field: `[channels.email] daily_cap = 1`
        keeps email's other defaults and every other channel's (SMS stays opt-in)."""
        try:
            given = msgspec.toml.decode(path.read_bytes())
            identity = given.get("identity") if isinstance(given, dict) else None
            if isinstance(identity, dict) and "contact_id_key" in identity:
                raise PolicyError(f"{path.name}: the contact id key is a secret: set "
                                  "KAIROS_CONTACT_ID_KEY, not `$.identity.contact_id_key`")
            merged = _overlay(msgspec.to_builtins(DEFAULT_POLICY), given)
            return msgspec.convert(merged, cls)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise PolicyError(f"{path.name}: {exc}") from None


def _overlay(base: Any, given: Any) -> Any:
    if isinstance(base, dict) and isinstance(given, dict):
        return {**base, **{k: _overlay(base.get(k), v) for k, v in given.items()}}
    return given


_DEFAULT_RULE = RulePolicy()
DEFAULT_POLICY = Policy()
