"""The one way a service's refusal reaches an admin form: its detail on the fields it names,
its message at the top unless a field says it already, names the form lacks before their
messages."""

from django import forms

from core.admin import form_add_refusal
from core.errors import Conflict, ValidationFailed


class TriggerForm(forms.Form):
    name = forms.CharField()
    trigger_segment = forms.IntegerField()


def refused(refusal: ValidationFailed | Conflict, **field_names: str) -> TriggerForm:
    form = TriggerForm(data={"name": "会员日", "trigger_segment": "1"})
    assert form.is_valid()
    form_add_refusal(form, refusal, field_names=field_names)
    return form


def test_the_detail_lands_on_the_fields_it_names_and_the_message_on_top() -> None:
    refusal = ValidationFailed(
        "invalid_campaign",
        "The campaign is not valid.",
        detail={
            "name": ["Too long.", "Taken."],
            "trigger_segment_id": ["No such segment."],
            "variants[0].content": ["Unknown variables: foo."],
            "__all__": ["Both windows overlap."],
        },
    )
    form = refused(refusal, trigger_segment_id="trigger_segment")
    assert not form.is_valid()
    assert form.errors["name"] == ["Too long.", "Taken."]
    assert form.errors["trigger_segment"] == ["No such segment."]
    assert form.non_field_errors() == [
        "The campaign is not valid.",
        "variants[0].content: Unknown variables: foo.",
        "Both windows overlap.",
    ]
    assert form.cleaned_data == {}


def test_a_message_a_field_says_already_is_not_repeated_on_top() -> None:
    message = "3 customers hold more than one tag of this group; remove the extra tags first."
    form = refused(Conflict("taken", message, detail={"name": [message]}))
    assert form.errors == {"name": [message]}


def test_a_refusal_without_detail_shows_its_message_on_top() -> None:
    form = refused(Conflict("gone", "No such segment."))
    assert form.errors == {"__all__": ["No such segment."]}


def test_places_and_their_messages_read_as_one_line() -> None:
    refusal = ValidationFailed(
        "invalid_rule",
        "Invalid rule at $.all[0].value: expected a number",
        detail={"name": [{"path": "$.all[0].value", "message": "expected a number"}]},
    )
    form = refused(refusal)
    assert form.errors["name"] == ["$.all[0].value: expected a number"]
    assert form.non_field_errors() == ["Invalid rule at $.all[0].value: expected a number"]
