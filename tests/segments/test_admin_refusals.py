"""What the segmentation services refuse reaches the admin one way: on the change form, next to
the field it names; a deletion refused for one segment is a message, and the others go."""

import pytest
from django.test import Client
from django.urls import reverse

from segments.models import RfmPolicy, Segment
from segments.services.segments import segment_create
from tests.factories import SegmentFactory

pytestmark = pytest.mark.django_db


def test_a_refused_policy_is_shown_again_with_the_reasons_on_its_fields(
    admin_client_en: Client,
) -> None:
    response = admin_client_en.post(
        reverse("admin:segments_rfmpolicy_add"),
        {
            "lookback_days": 400,
            "scoring_method": "thresholds",
            "recency_breakpoints": "30,60",
            "frequency_breakpoints": "1,2,3,5",
            "monetary_breakpoints": "100,200,500,1000",
            "high_score_threshold": 3,
        },
    )
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors == {
        "__all__": ["The policy is not valid."],
        "recency_breakpoints": ["Give exactly 4 breakpoints."],
    }
    assert 'value="400"' in response.content.decode()  # as entered
    assert list(RfmPolicy.objects.values_list("version", flat=True)) == [1]


def test_deleting_segments_reports_each_refusal_and_deletes_the_others(
    admin_client_en: Client,
) -> None:
    named = segment_create(name="名单", kind="static", actor="t")
    free = segment_create(name="空闲", kind="static", actor="t")
    SegmentFactory(
        name="引用", kind="dynamic", rule={"field": "segment", "op": "in", "value": [named.pk]}
    )
    response = admin_client_en.post(
        reverse("admin:segments_segment_changelist"),
        {"action": "delete_selected", "_selected_action": [named.pk, free.pk], "post": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    refusals = [str(m) for m in response.context["messages"] if m.level_tag == "error"]
    assert len(refusals) == 1
    assert "name this segment in their rules" in refusals[0]
    assert set(Segment.objects.values_list("name", flat=True)) == {"名单", "引用"}
