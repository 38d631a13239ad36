"""What the WeCom tag tests share: a corp in the fake, its relations copied here as the
contacts sync would leave them, and counts of the writes a step makes."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import Customer, TagGroup, WeComFollow
from crm.wecom.tags import customer_wecom_tags_apply
from devstack.wecom_directory import Directory
from devstack.wecom_fake import FakeWeCom
from tests.campaigns.support import CORP_ID
from tests.factories.crm import CustomerFactory, IdentityFactory, StaffMemberFactory

WRITES = ("INSERT", "UPDATE", "DELETE")


@contextmanager
def writes_to(*tables: str) -> Iterator[list[str]]:
    """The statements of the block that write to any of `tables` (filled when it ends)."""
    found: list[str] = []
    with CaptureQueriesContext(connection) as queries:
        yield found
    for query in queries.captured_queries:
        sql = query["sql"].lstrip()
        is_write = sql.upper().startswith(WRITES) or "DELETE FROM" in sql or "INSERT INTO" in sql
        if is_write and any(table in sql for table in tables):
            found.append(sql)


def corp(fake: FakeWeCom, *, contacts: int = 4, tags: int = 20) -> Directory:
    """A small corp in the fake: 2 staff members, `contacts` customers, `tags` corp tags in
    groups of ten."""
    fake.directory = Directory.generate(staff=2, contacts=contacts, chats=0, tags=tags, seed=7)
    return fake.directory


def relations_copy(directory: Directory) -> dict[str, Customer]:
    """Customers, their WeCom identities and relations here as WeCom has them (what the
    contacts sync does), then their tags from WeCom; returns the customers by
    external_userid."""
    customers: dict[str, Customer] = {}
    now = timezone.now()
    for external_userid in directory.contacts:
        customer = CustomerFactory()
        IdentityFactory(
            customer=customer, provider="wecom", namespace=CORP_ID, raw_value=external_userid
        )
        customers[external_userid] = customer
    for (userid, external_userid), follow in directory.follows.items():
        WeComFollow.objects.create(
            customer=customers[external_userid],
            staff_member=StaffMemberFactory(wecom_userid=userid),
            wecom_tag_ids=list(follow.tag_ids),
            observed_at=now,
        )
    customer_wecom_tags_apply(customer_ids=[c.pk for c in customers.values()], actor="test")
    return customers


def relations_refresh(
    directory: Directory, customer: Customer, external_userid: str
) -> dict[str, int]:
    """What an edit_external_contact callback does (the contacts slice): the customer's
    relations' tags read from WeCom, then their holdings applied."""
    for follow in WeComFollow.objects.filter(customer=customer).select_related("staff_member"):
        wecom_follow = directory.follows.get((follow.staff_member.wecom_userid, external_userid))
        tag_ids = list(wecom_follow.tag_ids) if wecom_follow else []
        if follow.wecom_tag_ids != tag_ids:
            WeComFollow.objects.filter(pk=follow.pk).update(wecom_tag_ids=tag_ids)
    return customer_wecom_tags_apply(customer_ids=[customer.pk], actor="test")


def mirrored_groups() -> list[TagGroup]:
    return list(TagGroup.objects.filter(is_wecom_mirrored=True).order_by("wecom_group_id"))
