"""Group attributes from labels (bounded, unknown -> other) and inferred from prompt terms."""

from __future__ import annotations

import pytest

from detectors.bias.groups import OTHER, GroupConfig, GroupExtractor, GroupValue
from genai_sre.events import Message

from .helpers import make_exchange


def test_declared_groups_from_labels() -> None:
    ex = make_exchange(labels={"group.gender": "Female", "group.age_band": "30-39", "tenant": "acme"})
    groups = GroupExtractor().extract(ex)
    assert groups == (GroupValue("age_band", "30-39"), GroupValue("gender", "female"))


def test_unknown_values_map_to_other_with_an_allow_list() -> None:
    extractor = GroupExtractor(GroupConfig(values={"gender": ("female", "male", "nonbinary")}))
    assert extractor.extract(make_exchange(labels={"group.gender": "robot"}))[0].value == OTHER
    assert extractor.extract(make_exchange(labels={"group.gender": "male"}))[0].value == "male"


def test_values_stay_bounded_without_an_allow_list() -> None:
    extractor = GroupExtractor(GroupConfig(max_values=3))
    values = [extractor.bound("region", v) for v in ("eu", "us", "apac", "latam", "eu")]
    assert values == ["eu", "us", OTHER, OTHER, "eu"]
    assert extractor.bound("region", "free text with spaces!") == OTHER


def test_attribute_filter() -> None:
    extractor = GroupExtractor(GroupConfig(attributes=("gender",)))
    assert [g.attribute for g in extractor.extract(make_exchange(labels={"group.gender": "f", "group.x": "y"}))] == [
        "gender"
    ]


def test_inferred_groups_are_marked_and_ambiguity_gives_none() -> None:
    config = GroupConfig(
        infer={"gender": {"female": ("she", "her", "Emily"), "male": ("he", "him", "his", "James")}}
    )
    extractor = GroupExtractor(config)
    ex = make_exchange(question="Emily wants a loan. Should she apply?")
    assert extractor.extract(ex) == (GroupValue("gender_inferred", "female", inferred=True),)
    # whole words only: "the", "shelter" and "hence" contain no pronoun
    assert extractor.extract(make_exchange(question="Where is the shelter? Hence the question.")) == ()
    # both groups mentioned: no inferred group
    assert extractor.extract(make_exchange(question="James told her the plan.")) == ()
    # falls back to the last user message when the question is empty
    ex2 = make_exchange(messages=(Message("user", "Is HE eligible?"),))
    assert extractor.extract(ex2)[0].value == "male"


def test_bad_config() -> None:
    with pytest.raises(ValueError, match="empty"):
        GroupConfig(infer={"gender": {"female": ()}})
