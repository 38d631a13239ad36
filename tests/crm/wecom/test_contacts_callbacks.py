"""change_external_contact callbacks applied to customers and relations through the WeCom
fake: each applied once when delivered twice, in any order, and deletions recorded on the
relation, never on the customer."""

import pytest

from crm.models import (
    Customer,
    CustomerAcquisition,
    FollowDeletedBy,
    Gender,
    Identity,
    StaffMember,
    WeComFollow,
)
from crm.personal_data import identity_key
from crm.services.customers import customer_upsert
from crm.services.merges import customers_merge
from devstack.wecom_fake import FakeWeCom
from tests.crm.wecom.contacts_support import T0, add_contact, deliver, row_versions

pytestmark = pytest.mark.django_db(transaction=True)

EXT = "wmEXTERNAL0000000000000000000001"
UNIONID = "oUNIONID000000000000000000001"


def _follow(userid: str = "staff001") -> WeComFollow:
    return WeComFollow.objects.select_related("staff_member").get(staff_member__wecom_userid=userid)


def test_add_applied_once_when_delivered_twice(fake: FakeWeCom) -> None:
    add_contact(fake.directory, EXT, "staff001", unionid=UNIONID, state="douyin-v1")

    assert (
        deliver(
            "add_external_contact", T0 + 5, UserID="staff001", ExternalUserID=EXT, State="douyin-v1"
        )
        == "applied"
    )
    before = [row_versions(t) for t in ("crm_customer", "crm_wecomfollow", "crm_identity")]
    assert (
        deliver(
            "add_external_contact", T0 + 5, UserID="staff001", ExternalUserID=EXT, State="douyin-v1"
        )
        == "applied"
    )

    assert [row_versions(t) for t in ("crm_customer", "crm_wecomfollow", "crm_identity")] == before
    customer = Customer.objects.get()
    assert (customer.display_name, customer.gender) == ("王小明", Gender.FEMALE)
    assert customer.owner == StaffMember.objects.get(wecom_userid="staff001", name="员工staff001")
    assert sorted(customer.identities.values_list("provider", flat=True)) == ["unionid", "wecom"]
    follow = _follow()
    assert (follow.add_way, follow.state, follow.deleted_at) == (1, "douyin-v1", None)
    assert follow.added_at.timestamp() == T0
    acquisition = CustomerAcquisition.objects.get()
    assert (acquisition.customer_id, acquisition.state) == (customer.pk, "douyin-v1")
    assert acquisition.acquired_at.timestamp() == T0 + 5


def test_edit_before_add_applies_the_same_state(fake: FakeWeCom) -> None:
    add_contact(fake.directory, EXT, "staff001", tag_ids=["etTAG1"])

    assert (
        deliver("edit_external_contact", T0 + 9, UserID="staff001", ExternalUserID=EXT) == "applied"
    )
    assert (
        deliver("add_external_contact", T0 + 5, UserID="staff001", ExternalUserID=EXT) == "applied"
    )

    assert Customer.objects.count() == 1
    follow = _follow()
    assert (follow.wecom_tag_ids, follow.deleted_at) == (["etTAG1"], None)
    assert follow.observed_at.timestamp() == T0 + 9
    # The edit came first: no first touch from it, the add records it.
    assert CustomerAcquisition.objects.get().acquired_at.timestamp() == T0 + 5


def test_deletion_by_staff_ends_the_relation_not_the_customer(fake: FakeWeCom) -> None:
    add_contact(fake.directory, EXT, "staff001")
    add_contact(fake.directory, EXT, "staff002", createtime=T0 + 100)
    deliver("add_external_contact", T0 + 5, UserID="staff001", ExternalUserID=EXT)
    del fake.directory.follows[("staff001", EXT)]

    for _ in range(2):
        deliver("del_external_contact", T0 + 50, UserID="staff001", ExternalUserID=EXT)

    follow = _follow("staff001")
    assert follow.deleted_at.timestamp() == T0 + 50
    assert follow.deleted_by == FollowDeletedBy.STAFF
    assert _follow("staff002").deleted_at is None
    # The owner moves to the staff member still holding a relation.
    assert Customer.objects.get().owner.wecom_userid == "staff002"


def test_deletion_by_customer(fake: FakeWeCom) -> None:
    add_contact(fake.directory, EXT, "staff001")
    deliver("add_external_contact", T0 + 5, UserID="staff001", ExternalUserID=EXT)

    assert deliver("del_follow_user", T0 + 60, UserID="staff001", ExternalUserID=EXT) == "applied"
    assert deliver("del_follow_user", T0 + 60, UserID="staff001", ExternalUserID=EXT) == "ignored"

    follow = _follow()
    assert (follow.deleted_by, follow.deleted_at.timestamp()) == (FollowDeletedBy.CUSTOMER, T0 + 60)
    assert Customer.objects.count() == 1


def test_an_add_older_than_the_deletion_does_not_reopen(fake: FakeWeCom) -> None:
    add_contact(fake.directory, EXT, "staff001")
    deliver("edit_external_contact", T0 + 1, UserID="staff001", ExternalUserID=EXT)
    deliver("del_external_contact", T0 + 50, UserID="staff001", ExternalUserID=EXT)

    # WeCom still lists the relation (its read lags the event): the add is older, changes nothing.
    deliver("add_external_contact", T0 + 5, UserID="staff001", ExternalUserID=EXT)
    assert _follow().deleted_at.timestamp() == T0 + 50

    # Gone from WeCom: 84061, nothing to apply.
    del fake.directory.follows[("staff001", EXT)]
    assert (
        deliver("add_external_contact", T0 + 5, UserID="staff001", ExternalUserID=EXT) == "ignored"
    )
    assert _follow().deleted_at.timestamp() == T0 + 50


def test_a_deletion_older_than_the_add_changes_nothing(fake: FakeWeCom) -> None:
    add_contact(fake.directory, EXT, "staff001")
    deliver("add_external_contact", T0 + 80, UserID="staff001", ExternalUserID=EXT)

    assert (
        deliver("del_external_contact", T0 + 50, UserID="staff001", ExternalUserID=EXT) == "ignored"
    )
    assert _follow().deleted_at is None


def test_a_deletion_of_an_unknown_customer_creates_nobody(fake: FakeWeCom) -> None:
    assert deliver("del_follow_user", T0, UserID="staff001", ExternalUserID=EXT) == "ignored"
    assert not Customer.objects.exists()


def test_unionid_joins_the_mini_program_customer(fake: FakeWeCom) -> None:
    shopper, _ = customer_upsert(
        identities=[identity_key(provider="unionid", value=UNIONID)],
        profile={"city": "杭州"},
        actor="api",
    )
    add_contact(fake.directory, EXT, "staff001", unionid=UNIONID)

    deliver("add_external_contact", T0 + 5, UserID="staff001", ExternalUserID=EXT)

    customer = Customer.objects.get()
    assert customer.pk == shopper.pk
    assert (customer.city, customer.display_name) == ("杭州", "王小明")
    assert Identity.objects.filter(customer=customer, provider="wecom").exists()
    assert _follow().customer_id == shopper.pk


def test_half_add_records_the_relation_wecom_lists(fake: FakeWeCom) -> None:
    add_contact(fake.directory, EXT, "staff001", state="live-room-7")

    assert (
        deliver("add_half_external_contact", T0 + 5, UserID="staff001", ExternalUserID=EXT)
        == "applied"
    )

    assert _follow().state == "live-room-7"
    assert CustomerAcquisition.objects.get().state == "live-room-7"


def test_transfer_failure_keeps_the_original_staff_member(fake: FakeWeCom) -> None:
    add_contact(fake.directory, EXT, "staff001")
    deliver("add_external_contact", T0 + 5, UserID="staff001", ExternalUserID=EXT)
    before = row_versions("crm_wecomfollow")

    deliver(
        "transfer_fail",
        T0 + 5,
        UserID="staff002",
        ExternalUserID=EXT,
        FailReason="customer_refused",
    )

    assert row_versions("crm_wecomfollow") == before
    assert Customer.objects.get().owner.wecom_userid == "staff001"


def test_a_merge_keeps_the_relation_observed_last(fake: FakeWeCom) -> None:
    add_contact(fake.directory, EXT, "staff001")
    add_contact(fake.directory, "wmOTHER", "staff001", createtime=T0 + 1)
    add_contact(fake.directory, "wmOTHER", "staff002", createtime=T0 + 2)
    deliver("add_external_contact", T0 + 5, UserID="staff001", ExternalUserID=EXT)
    deliver("add_external_contact", T0 + 9, UserID="staff001", ExternalUserID="wmOTHER")
    survivor, loser = Customer.objects.order_by("pk")

    customers_merge(customer_ids=[survivor.pk, loser.pk], actor="test", reason="test")

    follows = WeComFollow.objects.filter(customer=survivor).order_by("staff_member__wecom_userid")
    assert [(f.staff_member.wecom_userid, f.observed_at.timestamp()) for f in follows] == [
        ("staff001", T0 + 9),
        ("staff002", T0 + 9),
    ]
