"""The ingestion structs restate some model choices as literals (msgspec validates them in C);
they must not drift apart."""

from typing import Literal, get_args, get_origin

import pytest
from django.db import models

from crm.inputs import CustomerIn, IdentityIn, InteractionIn, OrderIn
from crm.models import Gender, IdentityProvider, InteractionKind, OrderStatus, SourceChannel


def _literal_values(annotation: object) -> set[str]:
    if get_origin(annotation) is Literal:
        return set(get_args(annotation))
    values: set[str] = set()
    for arg in get_args(annotation):
        values |= _literal_values(arg)
    return values


@pytest.mark.parametrize(
    ("struct", "field", "choices", "extra"),
    [
        (OrderIn, "status", OrderStatus, set()),
        (InteractionIn, "kind", InteractionKind, set()),
        (IdentityIn, "provider", IdentityProvider, set()),
        (CustomerIn, "gender", Gender, set()),
        (CustomerIn, "source_channel", SourceChannel, {""}),
    ],
)
def test_literals_match_the_model_choices(
    struct: type, field: str, choices: type[models.TextChoices], extra: set[str]
) -> None:
    annotation = struct.__annotations__[field]
    assert _literal_values(annotation) == set(choices.values) | extra
