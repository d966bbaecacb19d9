"""Settings from the environment: a wrong value names the variable to fix."""

import pytest

from engine.config import Settings
from engine.errors import KairosError, SettingsError


def test_a_processing_guarantee_outside_the_two_is_refused_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"KAIROS_PROCESSING_GUARANTEE: Invalid enum value"):
        Settings.from_env({"KAIROS_PROCESSING_GUARANTEE": "exactly-once"})


def test_a_number_that_is_not_one_is_refused_naming_the_variable() -> None:
    with pytest.raises(KairosError, match=r"KAIROS_PARTITIONS: Expected `int`"):
        Settings.from_env({"KAIROS_PARTITIONS": "four"})


def test_topic_names_come_from_one_place() -> None:
    topics = Settings.from_env({"KAIROS_APP_ID": "shop", "KAIROS_TOPIC_EMAIL": "mail"}).topics
    assert topics.inputs["mail"] == "email"
    assert topics.internal == {"identity": "shop-identity", "contacts": "shop-contacts",
                               "items": "shop-items"}
    assert topics.changelogs["contacts"] == "shop-contacts-changelog"
    assert topics.inputs["kairos-catalogue"] == "catalogue"
    plain, compacted = topics.created()
    assert "kairos-outcomes" in plain and "shop-contacts" in plain and "shop-items" in plain
    assert compacted == ["shop-identity-changelog", "shop-contacts-changelog",
                         "shop-items-changelog"]
