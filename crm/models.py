"""CRM data model: customers and their identities, tags, groups (社群), orders, interactions and
consent. Every hot table carries `customer_id` so that it can be sharded by customer
(docs/architecture.md). Business rules live in `crm.services`, not here."""

from datetime import datetime

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class SourceChannel(models.TextChoices):
    DOUYIN = "douyin", _("Douyin")
    KUAISHOU = "kuaishou", _("Kuaishou")
    WECHAT_CHANNELS = "wechat_channels", _("WeChat Channels")
    XIAOHONGSHU = "xiaohongshu", _("Xiaohongshu")
    BILIBILI = "bilibili", _("Bilibili")
    MINIPROGRAM = "miniprogram", _("Mini-program")
    OFFLINE_STORE = "offline_store", _("Offline store")
    WECOM = "wecom", _("WeCom")
    OTHER = "other", _("Other")


# The systems that report orders, interactions and consents, by the codes integrations send.
# Sources are free text (an integration names its own): pages show a known code's label and any
# other code as it is.
KNOWN_SOURCES = {
    **dict(SourceChannel.choices),
    "douyin_shop": _("Douyin shop"),
    "kuaishou_shop": _("Kuaishou shop"),
    "xhs_shop": _("Xiaohongshu shop"),
    "pos": _("Store POS"),
}


def source_label(code: str) -> str:
    label = KNOWN_SOURCES.get(code)
    return str(label) if label is not None else code


class Gender(models.TextChoices):
    UNKNOWN = "unknown", _("Unknown")
    MALE = "male", _("Male")
    FEMALE = "female", _("Female")


class StaffMember(models.Model):
    """A brand employee with a WeCom account who owns customers (跟进人)."""

    wecom_userid = models.CharField(_("WeCom userid"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=64, blank=True)
    # The admin login of this staff member: a user without `crm.view_all_customers` sees only
    # the customers of the staff member bound to it (导购 / 客户经理).
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("admin user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="staff_member",
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("staff member")
        verbose_name_plural = _("staff members")
        ordering = ["wecom_userid"]

    def __str__(self) -> str:
        return self.name or self.wecom_userid


class Customer(models.Model):
    display_name = models.CharField(_("display name"), max_length=128, blank=True)
    gender = models.CharField(
        _("gender"), max_length=8, choices=Gender.choices, default=Gender.UNKNOWN
    )
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    province = models.CharField(_("province"), max_length=32, blank=True)
    city = models.CharField(_("city"), max_length=32, blank=True)
    source_channel = models.CharField(
        _("source channel"), max_length=32, choices=SourceChannel.choices, blank=True
    )
    first_seen_at = models.DateTimeField(_("first seen"), default=timezone.now)
    owner = models.ForeignKey(
        StaffMember,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="customers",
    )
    member_level = models.PositiveSmallIntegerField(_("member level"), default=0)
    member_points = models.IntegerField(_("member points"), default=0)
    # The source system's own update time of the profile last applied from a bulk row: a row
    # older than it is stale and sets no profile field (see crm.services.customers).
    profile_source_updated_at = models.DateTimeField(
        _("profile updated at source"), null=True, blank=True
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        permissions = [
            ("view_personal_data", _("Can see unmasked personal data")),
            ("view_all_customers", _("Can see every customer, not only those owned")),
        ]
        indexes = [
            # The name search (display_name__icontains, UPPER(display_name) LIKE '%...%'):
            # trigrams find a name among a million without reading them all.
            GinIndex(
                OpClass(Upper("display_name"), name="gin_trgm_ops"),
                name="customer_name_trigram",
            )
        ]

    def __str__(self) -> str:
        return self.display_name or f"#{self.pk}"


class IdentityProvider(models.TextChoices):
    WECOM = "wecom", _("WeCom external_userid")
    UNIONID = "unionid", _("WeChat unionid")
    OPENID = "openid", _("WeChat openid")
    PHONE = "phone", _("Phone")
    EXTERNAL = "external", _("External system id")


class Identity(models.Model):
    """One way to recognise a customer. The value is encrypted at rest and found by keyed hash;
    `value_masked` is what anyone without the personal-data permission sees."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="identities"
    )
    # Key columns compare bytewise (COLLATE "C"): every ingested row probes their index.
    provider = models.CharField(
        _("provider"), max_length=16, choices=IdentityProvider.choices, db_collation="C"
    )
    namespace = models.CharField(
        _("namespace"),
        max_length=64,
        db_collation="C",
        blank=True,
        help_text=_("Corp id for WeCom, appid for openid, system name for external ids."),
    )
    value_hash = models.CharField(max_length=64, db_collation="C")
    value_encrypted = models.TextField()
    value_masked = models.CharField(_("value"), max_length=64)
    is_sensitive = models.BooleanField(_("sensitive"), default=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("identity")
        verbose_name_plural = _("identities")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "namespace", "value_hash"], name="identity_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.value_masked}"


class TagGroup(models.Model):
    name = models.CharField(_("name"), max_length=64, unique=True)
    is_exclusive = models.BooleanField(
        _("exclusive"),
        default=False,
        help_text=_("A customer holds at most one tag of an exclusive group."),
    )
    description = models.CharField(_("description"), max_length=255, blank=True)
    # The WeCom corp tag group this group mirrors (企业客户标签组), by its id there.
    wecom_group_id = models.CharField(
        _("WeCom tag group id"), max_length=64, null=True, blank=True, unique=True
    )
    is_wecom_mirrored = models.BooleanField(
        _("mirrored to WeCom"),
        default=False,
        help_text=_(
            "Tags of this group that are given or taken away here are also given or taken away "
            "in WeCom, on every staff member's relation with the customer."
        ),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("tag group")
        verbose_name_plural = _("tag groups")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    group = models.ForeignKey(
        TagGroup, verbose_name=_("tag group"), on_delete=models.PROTECT, related_name="tags"
    )
    name = models.CharField(_("name"), max_length=64)
    description = models.CharField(_("description"), max_length=255, blank=True)
    wecom_tag_id = models.CharField(
        _("WeCom tag id"), max_length=64, null=True, blank=True, unique=True
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["group__name", "name"]
        constraints = [models.UniqueConstraint(fields=["group", "name"], name="tag_unique_name")]

    def __str__(self) -> str:
        return f"{self.group.name}/{self.name}"


class TagSource(models.TextChoices):
    MANUAL = "manual", _("Manual")
    IMPORT = "import", _("Import")
    RULE = "rule", _("Rule")
    MODEL = "model", _("Model")
    WECOM = "wecom", _("WeCom")


class CustomerTag(models.Model):
    """A tag held by a customer. `exclusive_group` repeats the tag's group when that group is
    exclusive (NULL otherwise) so that PostgreSQL itself enforces one tag per exclusive group."""

    # Both foreign keys are served by the composite indexes below, not by indexes of their own.
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="customer_tags",
        db_index=False,
    )
    tag = models.ForeignKey(
        Tag,
        verbose_name=_("tag"),
        on_delete=models.CASCADE,
        related_name="customer_tags",
        db_index=False,
    )
    exclusive_group = models.ForeignKey(
        TagGroup,
        verbose_name=_("exclusive tag group"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    source = models.CharField(
        _("source"), max_length=16, choices=TagSource.choices, default=TagSource.MANUAL
    )
    tagged_at = models.DateTimeField(_("tagged at"), default=timezone.now)

    class Meta:
        verbose_name = _("customer tag")
        verbose_name_plural = _("customer tags")
        constraints = [
            models.UniqueConstraint(fields=["customer", "tag"], name="customer_tag_unique"),
            models.UniqueConstraint(
                fields=["customer", "exclusive_group"], name="customer_tag_exclusive_group"
            ),
        ]
        indexes = [models.Index(fields=["tag", "customer"], name="customer_tag_by_tag")]

    def __str__(self) -> str:
        # What the customer page shows above each of the customer's tags.
        return str(self.tag.name)


class GroupKind(models.TextChoices):
    WECOM_GROUP = "wecom_group", _("WeCom customer group")
    WECHAT_GROUP = "wechat_group", _("WeChat group")
    COMMUNITY = "community", _("Community")


class Group(models.Model):
    """A 社群: a WeCom customer group chat, a WeChat group or a community."""

    kind = models.CharField(_("kind"), max_length=16, choices=GroupKind.choices)
    external_id = models.CharField(_("external id"), max_length=64)
    name = models.CharField(_("name"), max_length=128)
    owner = models.ForeignKey(
        StaffMember,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="groups",
    )
    # When the member list last applied was observed: an older list changes nothing.
    members_observed_at = models.DateTimeField(_("members observed at"), null=True, blank=True)
    # When the group chat was dismissed (解散) in WeCom; its stays are closed then.
    dismissed_at = models.DateTimeField(_("dismissed at"), null=True, blank=True)
    # Read from WeCom at least once (sync or callback): only such chats are dismissed by the
    # nightly reconciliation when WeCom stops listing them; chats sent by an integration are not.
    is_wecom_synced = models.BooleanField(_("synced from WeCom"), default=False, db_default=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        # A context keeps these apart from Django's auth "group" (权限组), which shares the msgid.
        verbose_name = pgettext_lazy("group chat", "group")
        verbose_name_plural = pgettext_lazy("group chat", "groups")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "external_id"], name="group_unique_external")
        ]

    def __str__(self) -> str:
        return self.name


class GroupMembership(models.Model):
    """One stay of a customer in a group. Leaving closes the row; re-joining opens a new one,
    so the history is kept. At most one open row per (group, customer)."""

    group = models.ForeignKey(
        Group, verbose_name=_("group chat"), on_delete=models.CASCADE, related_name="memberships"
    )
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="group_memberships",
        db_index=False,
    )
    joined_at = models.DateTimeField(_("joined at"))
    left_at = models.DateTimeField(_("left at"), null=True, blank=True)

    class Meta:
        verbose_name = _("group membership")
        verbose_name_plural = _("group memberships")
        constraints = [
            models.UniqueConstraint(
                fields=["group", "customer"],
                condition=Q(left_at__isnull=True),
                name="group_membership_one_open",
            ),
            models.CheckConstraint(
                condition=Q(left_at__isnull=True) | Q(left_at__gte=models.F("joined_at")),
                name="group_membership_left_after_joined",
            ),
        ]
        indexes = [models.Index(fields=["customer", "group"], name="membership_by_customer")]

    def __str__(self) -> str:
        return str(self.group.name)


class OrderStatus(models.TextChoices):
    PAID = "paid", _("Paid")
    PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")
    REFUNDED = "refunded", _("Refunded")
    CANCELLED = "cancelled", _("Cancelled")


# An order in one of these counts as a purchase (its refunds net out of its amount); refunded
# and cancelled orders do not.
PURCHASE_STATUSES = (OrderStatus.PAID.value, OrderStatus.PARTIALLY_REFUNDED.value)


class Order(models.Model):
    """An order from a shop system, unique by (source, external_id). `content_hash` digests the
    payload it was last written from, so that a re-sent unchanged order writes nothing."""

    # customer_id is served by order_by_customer_paid; the natural key compares bytewise.
    # No database constraint: its per-row check (a query and a row lock per order, at commit)
    # cost a sixth of ingestion. The order services check the batch's customers in one query
    # under the customer-removal lock instead (see crm.services.removals), and merges move
    # orders before deleting a customer. NULL: the customer was erased (PIPL); the order stays
    # in the brand's accounts, detached from the person.
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="orders",
        db_index=False,
        db_constraint=False,
    )
    source = models.CharField(_("source"), max_length=32, db_collation="C")
    external_id = models.CharField(_("external order id"), max_length=64, db_collation="C")
    status = models.CharField(_("status"), max_length=20, choices=OrderStatus.choices)
    total_amount = models.DecimalField(_("total amount"), max_digits=14, decimal_places=2)
    refunded_amount = models.DecimalField(
        _("refunded amount"), max_digits=14, decimal_places=2, default=0
    )
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    channel = models.CharField(_("channel"), max_length=32, blank=True)
    store = models.CharField(_("store"), max_length=64, blank=True)
    content_hash = models.CharField(_("content hash"), max_length=32)
    # The source system's own update time of the version stored (null: never sent). An older
    # version is stale and written nowhere (see crm.services.orders).
    source_updated_at = models.DateTimeField(_("updated at source"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="order_unique_external"),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(total_amount__gte=0),
                name="order_amounts_not_negative",
            ),
        ]
        indexes = [
            # Covers the per-customer reads of the recomputation (its sweep and the start of
            # an active spell) so that they never visit the table.
            models.Index(
                fields=["customer", "paid_at"],
                include=["status", "total_amount", "refunded_amount"],
                name="order_by_customer_paid",
            ),
            # An order number looked up on its own, source unknown (the admin's search): the
            # natural key's index leads with the source.
            models.Index(fields=["external_id"], name="order_by_external_id"),
            # The admin's date filter (today, the past 7 days, ...): a range of paid_at.
            models.Index(fields=["paid_at"], name="order_by_paid_at"),
        ]

    def __str__(self) -> str:
        return f"{source_label(self.source)} {self.external_id}"

    @property
    def purchased_at(self) -> datetime | None:
        """What its items' `purchased_at` holds: when it was paid, if it counts as a purchase."""
        return self.paid_at if self.status in PURCHASE_STATUSES else None


class OrderItem(models.Model):
    # Served by order_item_unique_line. Items are written only with their order, by the order
    # services, which keep customer_id equal to the order's (so that item queries need no
    # join); they go with their order, so a customer's are found through its orders and no
    # index leads with customer_id (dropping one took a quarter off ingestion's database time).
    # Neither key has a database constraint: checking them would lock the order and customer
    # rows once per item on ingestion (a third of its cost).
    order = models.ForeignKey(
        Order,
        verbose_name=_("order"),
        on_delete=models.CASCADE,
        related_name="items",
        db_index=False,
        db_constraint=False,
    )
    # NULL with its order's, once the customer was erased.
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    line_no = models.PositiveSmallIntegerField()
    sku = models.CharField(_("SKU"), max_length=64)
    name = models.CharField(_("name"), max_length=128, blank=True)
    category = models.CharField(_("category"), max_length=64, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"))
    unit_price = models.DecimalField(_("unit price"), max_digits=14, decimal_places=2)
    # The order's purchased_at, copied so that "bought this category within N days" reads one
    # index range of the items (order_item_purchases_by_sku, _by_cat) instead of joining every
    # item to its order. Items are rewritten whenever their order's status or paid_at changes.
    purchased_at = models.DateTimeField(_("purchased at"), null=True, blank=True)

    class Meta:
        verbose_name = _("order item")
        verbose_name_plural = _("order items")
        constraints = [
            models.UniqueConstraint(fields=["order", "line_no"], name="order_item_unique_line")
        ]
        indexes = [
            models.Index(
                fields=["sku", "purchased_at"],
                include=["customer", "order"],
                condition=Q(purchased_at__isnull=False),
                name="order_item_purchases_by_sku",
            ),
            models.Index(
                fields=["category", "purchased_at"],
                include=["customer", "order"],
                condition=Q(purchased_at__isnull=False),
                name="order_item_purchases_by_cat",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}#{self.line_no}"


class InteractionKind(models.TextChoices):
    MESSAGE_REPLY = "message_reply", _("Message reply")
    LINK_CLICK = "link_click", _("Link click")
    CONTENT_VIEW = "content_view", _("Content view")
    MINIPROGRAM_VISIT = "miniprogram_visit", _("Mini-program visit")
    GROUP_MESSAGE = "group_message", _("Group message")
    LIVE_STREAM_VIEW = "live_stream_view", _("Live stream view")
    COUPON_CLAIM = "coupon_claim", _("Coupon claim")


class Interaction(models.Model):
    customer = models.ForeignKey(  # served by interaction_by_customer
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="interactions",
        db_index=False,
    )
    kind = models.CharField(_("kind"), max_length=32, choices=InteractionKind.choices)
    occurred_at = models.DateTimeField(_("occurred at"))
    properties = models.JSONField(_("properties"), default=dict, blank=True)
    source = models.CharField(_("source"), max_length=32, db_collation="C")
    idempotency_key = models.CharField(_("idempotency key"), max_length=128, db_collation="C")
    # The source system's own update time of the properties stored; only a newer re-send of
    # the same (source, idempotency_key) replaces them.
    source_updated_at = models.DateTimeField(_("updated at source"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("interaction")
        verbose_name_plural = _("interactions")
        constraints = [
            models.UniqueConstraint(
                fields=["source", "idempotency_key"], name="interaction_unique_key"
            )
        ]
        indexes = [
            models.Index(fields=["customer", "kind", "occurred_at"], name="interaction_by_customer")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {timezone.localtime(self.occurred_at):%Y-%m-%d}"


class ConsentChannel(models.TextChoices):
    WECOM = "wecom", _("WeCom")
    WECHAT = "wechat", _("WeChat")
    SMS = "sms", _("SMS")
    EMAIL = "email", _("Email")
    PHONE_CALL = "phone_call", _("Phone call")


class ConsentStatus(models.TextChoices):
    OPTED_IN = "opted_in", _("Opted in")
    OPTED_OUT = "opted_out", _("Opted out")


class Consent(models.Model):
    """Current consent of a customer on a channel: the latest event by `changed_at` wins, so
    events that arrive out of order cannot resurrect an old state. No row means no decision."""

    customer = models.ForeignKey(  # served by consent_unique_channel
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="consents",
        db_index=False,
    )
    channel = models.CharField(_("channel"), max_length=16, choices=ConsentChannel.choices)
    status = models.CharField(_("status"), max_length=16, choices=ConsentStatus.choices)
    source = models.CharField(_("source"), max_length=32)
    changed_at = models.DateTimeField(_("changed at"))

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        constraints = [
            models.UniqueConstraint(fields=["customer", "channel"], name="consent_unique_channel")
        ]
        indexes = [
            models.Index(
                fields=["channel", "customer"],
                condition=Q(status="opted_out"),
                name="consent_opted_out",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()}: {self.get_status_display()}"


class ConsentEvent(models.Model):
    """Append-only history of consent changes, as reported."""

    customer = models.ForeignKey(  # served by consent_event_by_customer
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="consent_events",
        db_index=False,
    )
    channel = models.CharField(_("channel"), max_length=16, choices=ConsentChannel.choices)
    status = models.CharField(_("status"), max_length=16, choices=ConsentStatus.choices)
    source = models.CharField(_("source"), max_length=32)
    occurred_at = models.DateTimeField(_("occurred at"))
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)

    class Meta:
        verbose_name = _("consent event")
        verbose_name_plural = _("consent events")
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["customer", "channel"], name="consent_event_by_customer")]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} → {self.get_status_display()}"


class CustomerMerge(models.Model):
    """Record of two customers found to be one person. The merged customer is deleted after
    everything it owned moved to the survivor; its profile is kept here as a snapshot."""

    survivor = models.ForeignKey(
        Customer, verbose_name=_("survivor"), on_delete=models.CASCADE, related_name="merges"
    )
    merged_customer_id = models.BigIntegerField(_("merged customer id"), unique=True)
    actor = models.CharField(_("actor"), max_length=128)
    reason = models.CharField(_("reason"), max_length=255)
    moved = models.JSONField(_("moved rows"), default=dict)
    merged_profile = models.JSONField(_("merged profile"), default=dict)
    merged_at = models.DateTimeField(_("merged at"), default=timezone.now)

    class Meta:
        verbose_name = _("customer merge")
        verbose_name_plural = _("customer merges")
        ordering = ["-merged_at"]

    def __str__(self) -> str:
        return f"{self.merged_customer_id}->{self.survivor_id}"


class DirtyMark(models.Model):
    """Customers whose score-relevant data changed since the last recomputation: one row per
    change (an ingested batch, say) naming all the customers it touched.

    Append-only: a mark is inserted in the same transaction as the change, so it is never lost,
    and no existing row is ever updated, so concurrent batches about the same customer never
    wait on each other here; one row per batch rather than per customer keeps it cheap. The
    recompute sweep deletes the marks up to the highest id it has seen and recomputes their
    customers; marks committed later stay for the next sweep. Ids of customers merged away
    are skipped by the sweep."""

    customer_ids = ArrayField(models.BigIntegerField())
    marked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("recomputation mark")
        verbose_name_plural = _("recomputation marks")

    def __str__(self) -> str:
        return f"{len(self.customer_ids)} @ {timezone.localtime(self.marked_at):%Y-%m-%d %H:%M}"


# --- WeCom (企业微信) as a source: follow relations, channel QR codes, callbacks, sync runs ---


class FollowDeletedBy(models.TextChoices):
    STAFF = "staff", _("Staff member deleted the customer")  # del_external_contact
    CUSTOMER = "customer", _("Customer deleted the staff member")  # del_follow_user


class WeComFollow(models.Model):
    """A staff member's relation with a customer in WeCom (添加客户关系): who added whom, when
    and how. A relation ended in WeCom is kept with when and by whom it ended, not deleted;
    adding the customer again reopens it. `observed_at` is the time of the WeCom event or sync
    observation applied last: an older one changes nothing."""

    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="wecom_follows",
        db_index=False,  # served by wecom_follow_unique (customer, staff_member)
    )
    staff_member = models.ForeignKey(
        StaffMember,
        verbose_name=_("staff member"),
        on_delete=models.CASCADE,
        related_name="wecom_follows",
    )
    added_at = models.DateTimeField(_("added at"), null=True, blank=True)
    # WeCom's add_way code (来源): 1 scanned a QR code, 2 searched a phone number, ...
    add_way = models.PositiveSmallIntegerField(_("added by way of"), null=True, blank=True)
    state = models.CharField(_("channel parameter"), max_length=64, blank=True)
    # Ids of the corp tags this staff member gave the customer in WeCom.
    wecom_tag_ids = ArrayField(
        models.CharField(max_length=64), verbose_name=_("WeCom tags"), default=list, blank=True
    )
    deleted_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    deleted_by = models.CharField(
        _("ended by"), max_length=16, choices=FollowDeletedBy.choices, blank=True
    )
    observed_at = models.DateTimeField(_("observed at"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("WeCom relation")
        verbose_name_plural = _("WeCom relations")
        constraints = [
            models.UniqueConstraint(fields=["customer", "staff_member"], name="wecom_follow_unique")
        ]
        indexes = [
            # The channel QR code report finds a code's relations by its state
            # (crm.selectors.contact_ways); most relations have none.
            models.Index(
                fields=["state", "added_at"],
                condition=~Q(state=""),
                name="wecom_follow_by_state",
            )
        ]

    def __str__(self) -> str:
        return f"{self.staff_member} → {self.customer}"


class ContactWayKind(models.IntegerChoices):
    SINGLE = 1, _("One staff member")
    MULTI = 2, _("Several staff members")


class ContactWay(models.Model):
    """A channel QR code (渠道活码): WeCom's contact way (联系我), one per video, live room or
    poster, told apart by its `state` (渠道参数), which WeCom hands back with every customer
    added through it."""

    name = models.CharField(_("name"), max_length=64)
    # WeCom takes at most 30 characters of state.
    state = models.CharField(_("channel parameter"), max_length=30, unique=True)
    config_id = models.CharField(
        _("WeCom configuration id"), max_length=64, null=True, blank=True, unique=True
    )
    kind = models.PositiveSmallIntegerField(
        _("kind"), choices=ContactWayKind.choices, default=ContactWayKind.SINGLE
    )
    staff_members = models.ManyToManyField(
        StaffMember, verbose_name=_("staff members"), related_name="contact_ways"
    )
    auto_tags = models.ManyToManyField(
        Tag, verbose_name=_("tags on add"), related_name="contact_ways", blank=True
    )
    # Where the code is placed: the customers it brings get this source channel if they have none.
    source_channel = models.CharField(
        _("source channel"), max_length=32, choices=SourceChannel.choices, blank=True
    )
    skip_verify = models.BooleanField(_("add without confirmation"), default=True)
    qr_code_url = models.CharField(_("QR code address"), max_length=512, blank=True)
    qr_code_image = models.BinaryField(_("QR code image"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("channel QR code")
        verbose_name_plural = _("channel QR codes")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class CustomerAcquisition(models.Model):
    """How a customer first came into the private domain through WeCom (first touch): the
    channel QR code and staff member of their first relation. Written once, never moved."""

    customer = models.OneToOneField(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="acquisition",
    )
    contact_way = models.ForeignKey(
        ContactWay,
        verbose_name=_("channel QR code"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="acquisitions",
    )
    state = models.CharField(_("channel parameter"), max_length=64, blank=True)
    staff_member = models.ForeignKey(
        StaffMember,
        verbose_name=_("staff member"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    acquired_at = models.DateTimeField(_("acquired at"))

    class Meta:
        verbose_name = _("customer acquisition")
        verbose_name_plural = _("customer acquisitions")
        indexes = [
            models.Index(fields=["contact_way", "acquired_at"], name="acquisition_by_way"),
        ]

    def __str__(self) -> str:
        return str(self.contact_way or self.state)


class WeComEventStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    APPLIED = "applied", _("Applied")
    IGNORED = "ignored", _("Not handled")
    FAILED = "failed", _("Failed")


class WeComEvent(models.Model):
    """A callback event from WeCom as it arrived, decrypted and then encrypted again at rest
    (it names customers). Append-only: only the processing columns ever change. WeCom retries
    an event it thinks undelivered; the same message is stored once (`message_hash`)."""

    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    # SHA-256 of the decrypted message: a retry carries the same bytes.
    message_hash = models.CharField(max_length=64, unique=True, db_collation="C")
    event = models.CharField(_("event"), max_length=64)
    change_type = models.CharField(_("change"), max_length=64, blank=True)
    event_at = models.DateTimeField(_("event time"))
    message_encrypted = models.TextField()
    # Keyed hash of the external_userid the event names, if any: erasure finds its events.
    subject_hash = models.CharField(max_length=64, blank=True, db_collation="C", db_index=True)
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=WeComEventStatus.choices,
        default=WeComEventStatus.PENDING,
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    error_code = models.CharField(_("error"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("WeCom event")
        verbose_name_plural = _("WeCom events")
        ordering = ["-received_at"]
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=Q(status="pending"),
                name="wecom_event_pending",
            ),
            # The sweep's other half (crm.services.wecom_events.wecom_events_requeue): failed
            # events, few, by their last attempt.
            models.Index(
                fields=["processed_at"],
                condition=Q(status="failed"),
                name="wecom_event_failed",
            ),
        ]

    def __str__(self) -> str:
        # Its number, as logs and the error column name it (the kind is shown in words).
        return f"#{self.pk}"


class WeComSyncStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    FINISHED = "finished", _("Finished")
    FAILED = "failed", _("Failed")


class WeComSyncRun(models.Model):
    """One full walk of WeCom (contacts, tags, group chats): its progress and cursor, so that a
    run stopped halfway resumes where it was, and what it found different (`changes`)."""

    scopes = ArrayField(models.CharField(max_length=16), verbose_name=_("scope"))
    trigger = models.CharField(_("started by"), max_length=128)
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=WeComSyncStatus.choices,
        default=WeComSyncStatus.RUNNING,
    )
    # Where the walk is: per scope, the staff member and cursor reached (see crm.wecom.sync).
    cursor = models.JSONField(_("cursor"), default=dict, blank=True)
    # Counts per kind of change applied, e.g. {"contacts_created": 3, "follows_ended": 1}.
    changes = models.JSONField(_("changes"), default=dict, blank=True)
    items_done = models.PositiveIntegerField(_("items read"), default=0)
    items_total = models.PositiveIntegerField(_("items expected"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=255, blank=True)
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    heartbeat_at = models.DateTimeField(_("last progress"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("WeCom sync run")
        verbose_name_plural = _("WeCom sync runs")
        ordering = ["-started_at"]
        constraints = [
            # One run at a time: a second start resumes the running one.
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="running"), name="wecom_sync_one_running"
            )
        ]

    def __str__(self) -> str:
        return f"{timezone.localtime(self.started_at):%Y-%m-%d %H:%M}"


class TagPushAction(models.TextChoices):
    ADD = "add", _("Give")
    REMOVE = "remove", _("Take away")


class TagPushStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class WeComTagPush(models.Model):
    """A tag given or taken away here, to be done in WeCom too (mark_tag on each of the
    customer's relations). Pushed in batches by a task; the outcome is kept."""

    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,  # served by wecom_tag_push_by_customer
    )
    tag = models.ForeignKey(Tag, verbose_name=_("tag"), on_delete=models.CASCADE, related_name="+")
    action = models.CharField(_("action"), max_length=8, choices=TagPushAction.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=TagPushStatus.choices, default=TagPushStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    error_code = models.CharField(_("error"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("tag push to WeCom")
        verbose_name_plural = _("tag pushes to WeCom")
        constraints = [
            # One intent waiting per customer and tag: a newer one replaces it (the latest
            # intent wins; crm.services.tags records them with ON CONFLICT on this index).
            models.UniqueConstraint(
                fields=["customer", "tag"],
                condition=Q(status="pending"),
                name="wecom_tag_push_one_pending",
            )
        ]
        indexes = [
            models.Index(fields=["customer", "tag"], name="wecom_tag_push_by_customer"),
            models.Index(
                fields=["created_at"],
                condition=Q(status="pending"),
                name="wecom_tag_push_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.tag}"


class WeComSyncSeenChat(models.Model):
    """A group chat a running sync read from WeCom: at its end, the chats read from WeCom
    before that it did not see are dismissed (dismissals WeCom never told). Kept in the
    database so that a resumed run still knows what it saw; removed when the run finishes.
    Plain ids, as WeComSyncSeenFollow."""

    run_id = models.BigIntegerField()
    group_id = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run_id", "group_id"], name="wecom_sync_seen_chat")
        ]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.group_id}"


class WeComSyncSeenFollow(models.Model):
    """A relation a running sync found in WeCom: at its end, the relations of the staff
    members it walked that it did not find are ended (deletions WeCom never told). Kept in
    the database so that a resumed run still knows what it found before it stopped; removed
    when the run finishes. Plain ids, no foreign keys: bookkeeping of one run, never joined
    to by deletes of customers or relations."""

    run_id = models.BigIntegerField()
    follow_id = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run_id", "follow_id"], name="wecom_sync_seen_unique")
        ]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.follow_id}"
