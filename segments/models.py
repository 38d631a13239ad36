"""Segmentation data model: the RFM and lifecycle policies (versioned, one active each), the
per-customer metrics row the recomputation writes, lifecycle transitions (a feed), the record of
each recomputation run (with a backfill's figures), and segments with their materialised
membership and its history.

Every customer-keyed table carries `customer_id` (docs/architecture.md). These tables are derived
data written in sets of up to a million rows, so their `customer_id` has no database constraint (a
per-row check would cost a third of a refresh): they are written only from queries over
existing customers, and a deleted or merged customer's rows go with it (Django cascades them).
Business rules live in `segments.services`, not here."""

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from crm.models import Customer


class RfmScoringMethod(models.TextChoices):
    QUANTILE = "quantile", _("Quantiles (quintiles over buyers in the window)")
    THRESHOLDS = "thresholds", _("Thresholds set by the operator")


class RfmTier(models.TextChoices):
    """The classic 8 tiers, in the order R/F/M high-low patterns are usually listed."""

    IMPORTANT_VALUE = "important_value", _("Important value")
    IMPORTANT_DEVELOP = "important_develop", _("Important develop")
    IMPORTANT_RETAIN = "important_retain", _("Important retain")
    IMPORTANT_WINBACK = "important_winback", _("Important win-back")
    GENERAL_VALUE = "general_value", _("General value")
    GENERAL_DEVELOP = "general_develop", _("General develop")
    GENERAL_RETAIN = "general_retain", _("General retain")
    GENERAL_WINBACK = "general_winback", _("General win-back")


class LifecycleState(models.TextChoices):
    PROSPECT = "prospect", _("Prospect")
    NEW = "new", _("New")
    ACTIVE = "active", _("Active")
    SLEEPING = "sleeping", _("Sleeping")
    CHURNED = "churned", _("Churned")
    REACTIVATED = "reactivated", _("Reactivated")


class PolicyBase(models.Model):
    """A policy is never edited in place: a change is a new version, and exactly one version
    is active (enforced by a partial unique index)."""

    version = models.PositiveIntegerField(_("version"), unique=True)
    is_active = models.BooleanField(_("active"), default=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    created_by = models.CharField(_("created by"), max_length=128, blank=True)

    class Meta:
        abstract = True
        ordering = ["-version"]


class RfmPolicy(PolicyBase):
    lookback_days = models.PositiveIntegerField(_("lookback window (days)"), default=365)
    scoring_method = models.CharField(
        _("scoring method"),
        max_length=16,
        choices=RfmScoringMethod.choices,
        default=RfmScoringMethod.QUANTILE,
    )
    # Four ascending breakpoints per dimension give scores 1-5 (thresholds method only).
    recency_breakpoints = ArrayField(
        models.PositiveIntegerField(),
        verbose_name=_("recency breakpoints (days)"),
        default=list,
        blank=True,
        help_text=_("E.g. 30,60,90,180: at most 30 days scores 5, over 180 days scores 1."),
    )
    frequency_breakpoints = ArrayField(
        models.PositiveIntegerField(),
        verbose_name=_("frequency breakpoints (orders)"),
        default=list,
        blank=True,
        help_text=_("E.g. 1,2,3,5: one order scores 1, more than 5 orders score 5."),
    )
    monetary_breakpoints = ArrayField(
        models.DecimalField(max_digits=14, decimal_places=2),
        verbose_name=_("monetary breakpoints (net spend)"),
        default=list,
        blank=True,
        help_text=_("E.g. 200,500,1000,3000: up to 200 scores 1, over 3000 scores 5."),
    )
    high_score_threshold = models.PositiveSmallIntegerField(
        _("high score threshold"),
        default=3,
        help_text=_("A score at least this high counts as high when tiers are assigned."),
    )

    class Meta(PolicyBase.Meta):
        verbose_name = _("RFM policy")
        verbose_name_plural = _("RFM policies")
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="rfm_policy_one_active"
            )
        ]

    def __str__(self) -> str:
        return gettext("RFM policy v%(version)s") % {"version": self.version}


class LifecyclePolicy(PolicyBase):
    new_days = models.PositiveIntegerField(
        _("new for (days)"), default=30, help_text=_("Days after the first paid order.")
    )
    active_days = models.PositiveIntegerField(
        _("active within (days)"),
        default=90,
        help_text=_("Active while the last paid order is at most this many days old."),
    )
    sleeping_days = models.PositiveIntegerField(
        _("sleeping within (days)"),
        default=180,
        help_text=_("Sleeping up to this many days since the last paid order; churned after."),
    )
    reactivated_days = models.PositiveIntegerField(
        _("reactivated for (days)"),
        default=30,
        help_text=_(
            "Days a customer stays reactivated after ordering again from sleeping or churned."
        ),
    )

    class Meta(PolicyBase.Meta):
        verbose_name = _("lifecycle policy")
        verbose_name_plural = _("lifecycle policies")
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"],
                condition=Q(is_active=True),
                name="lifecycle_policy_one_active",
            )
        ]

    def __str__(self) -> str:
        return gettext("Lifecycle policy v%(version)s") % {"version": self.version}


class CustomerMetrics(models.Model):
    """One narrow row per customer, written only by the recomputation, and only where a value
    changed (so `changed_at` says when). Order figures count paid orders net of refunds; the
    window is the active RFM policy's lookback."""

    customer = models.OneToOneField(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="metrics",
        db_constraint=False,
    )
    first_paid_at = models.DateTimeField(_("first paid order"), null=True, blank=True)
    last_paid_at = models.DateTimeField(_("last paid order"), null=True, blank=True)
    orders_in_window = models.PositiveIntegerField(_("orders in window"), default=0)
    net_spend_in_window = models.DecimalField(
        _("net spend in window"), max_digits=14, decimal_places=2, default=0
    )
    lifetime_orders = models.PositiveIntegerField(_("lifetime orders"), default=0)
    lifetime_net_spend = models.DecimalField(
        _("lifetime net spend"), max_digits=14, decimal_places=2, default=0
    )
    avg_order_value = models.DecimalField(
        _("average order value"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    avg_days_between_orders = models.DecimalField(
        _("average days between orders"), max_digits=8, decimal_places=1, null=True, blank=True
    )
    r_score = models.PositiveSmallIntegerField(_("R score"), null=True, blank=True)
    f_score = models.PositiveSmallIntegerField(_("F score"), null=True, blank=True)
    m_score = models.PositiveSmallIntegerField(_("M score"), null=True, blank=True)
    # NULL: no paid order in the window, hence no tier (a value no tier can be confused with).
    rfm_tier = models.CharField(  # noqa: DJ001
        _("RFM tier"), max_length=20, choices=RfmTier.choices, null=True, blank=True
    )
    lifecycle_state = models.CharField(
        _("lifecycle state"),
        max_length=12,
        choices=LifecycleState.choices,
        default=LifecycleState.PROSPECT,
    )
    lifecycle_since = models.DateTimeField(_("in this state since"), null=True, blank=True)
    previous_lifecycle_state = models.CharField(
        _("previous lifecycle state"),
        max_length=12,
        choices=LifecycleState.choices,
        blank=True,
    )
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)

    class Meta:
        verbose_name = _("customer metrics")
        verbose_name_plural = _("customer metrics")
        indexes = [
            # The overview's retention cohorts: the first-time buyers of the last twelve
            # months, an index-only range scan instead of a pass over every customer.
            models.Index(
                fields=["first_paid_at"], include=["customer"], name="metrics_by_first_paid"
            )
        ]

    def __str__(self) -> str:
        tier = self.get_rfm_tier_display() if self.rfm_tier else "—"
        return f"{self.get_lifecycle_state_display()} · {tier}"


class LifecycleTransition(models.Model):
    """A change of lifecycle state, as a feed (read by id cursor). `at` is when the new state
    began by the policy (the order's time, or the day a window ran out); `recorded_at` is when
    the recomputation noticed it."""

    customer = models.ForeignKey(  # served by transition_by_customer
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="lifecycle_transitions",
        db_index=False,
        db_constraint=False,
    )
    from_state = models.CharField(_("from"), max_length=12, choices=LifecycleState.choices)
    to_state = models.CharField(_("to"), max_length=12, choices=LifecycleState.choices)
    at = models.DateTimeField(_("at"))
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)
    run = models.ForeignKey(
        "RecomputeRun",
        verbose_name=_("run"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )

    class Meta:
        verbose_name = _("lifecycle transition")
        verbose_name_plural = _("lifecycle transitions")
        indexes = [
            models.Index(fields=["customer", "at"], name="transition_by_customer"),
            # The overview's flow between states over a period, and the customers list filtered
            # by a move in it: index-only range scans over `at`.
            models.Index(
                fields=["at"],
                include=["from_state", "to_state", "customer"],
                name="transition_by_at",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_from_state_display()} → {self.get_to_state_display()}"


class RecomputeKind(models.TextChoices):
    FULL = "full", _("Full")
    INCREMENTAL = "incremental", _("Incremental")
    # Every customer as of a date before the latest full run: recorded apart (BackfillCount),
    # never written to the live metrics, transitions or segments.
    BACKFILL = "backfill", _("Backfill (recorded apart)")


class RecomputeStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped (another run was in progress)")


class RecomputeRun(models.Model):
    """One recomputation: what it computed as of when, with which policies and breakpoints,
    how long it took and what it changed. Incremental runs reuse the breakpoints of the last
    successful full run. A backfill changes nothing live: its figures are its BackfillCount
    rows."""

    kind = models.CharField(_("kind"), max_length=12, choices=RecomputeKind.choices)
    trigger = models.CharField(_("trigger"), max_length=32)
    as_of = models.DateField(_("as of"))
    status = models.CharField(
        _("status"),
        max_length=12,
        choices=RecomputeStatus.choices,
        default=RecomputeStatus.RUNNING,
    )
    rfm_policy = models.ForeignKey(
        RfmPolicy, verbose_name=_("RFM policy"), null=True, on_delete=models.PROTECT
    )
    lifecycle_policy = models.ForeignKey(
        LifecyclePolicy, verbose_name=_("lifecycle policy"), null=True, on_delete=models.PROTECT
    )
    breakpoints = models.JSONField(_("breakpoints"), default=dict, blank=True)
    customers_processed = models.PositiveIntegerField(_("customers processed"), default=0)
    rows_changed = models.PositiveIntegerField(_("rows changed"), default=0)
    transitions_written = models.PositiveIntegerField(_("transitions written"), default=0)
    error = models.TextField(_("error"), blank=True)
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    # Not stored: the customers an incremental run recomputed, for the segment refresh after it.
    recomputed_customer_ids: list[int] | None = None

    class Meta:
        verbose_name = _("recomputation run")
        verbose_name_plural = _("recomputation runs")
        ordering = ["-started_at", "-id"]
        permissions = [("request_recompute", _("Can request a recomputation of everyone"))]
        indexes = [models.Index(fields=["kind", "status", "-id"], name="recompute_run_latest")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.get_status_display()})"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class RetentionCohort(models.Model):
    """The overview's retention (留存) pre-aggregate by month of first purchase, as of
    `computed_at` (segments.services.retention replaces the whole table at once): for each of
    the RETENTION_COHORTS business months up to then, the customers whose first purchase fell
    in it (`months_since_first` 0) and those of them who bought again k months later
    (`months_since_first` k, a row only where someone did)."""

    month = models.DateField(_("month of first order"))
    months_since_first = models.PositiveSmallIntegerField(_("months since the first order"))
    customers = models.PositiveIntegerField(pgettext_lazy("count", "customers"))
    computed_at = models.DateTimeField(_("computed at"))

    class Meta:
        verbose_name = _("retention cohort")
        verbose_name_plural = _("retention cohorts")
        constraints = [
            models.UniqueConstraint(
                fields=["month", "months_since_first"], name="retention_cohort_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} +{self.months_since_first}: {self.customers}"


class RetentionChannel(models.Model):
    """The same first-time buyers per source channel ("": none recorded), as of
    `computed_at`, one row per number of days of REPEAT_WITHIN_DAYS: the channel's buyers
    (`customers`), those whose first order is at least `within_days` old (`eligible`) and, of
    them, those who bought again within that many days of it (`repeat_buyers`)."""

    source_channel = models.CharField(_("source channel"), max_length=32, blank=True)
    within_days = models.PositiveSmallIntegerField(_("within days"))
    customers = models.PositiveIntegerField(pgettext_lazy("count", "customers"))
    eligible = models.PositiveIntegerField(_("first order old enough"))
    repeat_buyers = models.PositiveIntegerField(_("repeat buyers"))
    computed_at = models.DateTimeField(_("computed at"))

    class Meta:
        verbose_name = _("retention by channel")
        verbose_name_plural = _("retention by channel")
        constraints = [
            models.UniqueConstraint(
                fields=["source_channel", "within_days"], name="retention_channel_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source_channel or '—'} ≤{self.within_days}: {self.repeat_buyers}"


class BackfillCount(models.Model):
    """What a backfill found: the customers in each RFM tier and lifecycle state as of the
    run's date (`rfm_tier` NULL: no paid order in the window), one row per pair. A backfill
    writes nothing else, so the live metrics, the transition feed and the segments stay as the
    latest full run left them."""

    run = models.ForeignKey(
        RecomputeRun,
        verbose_name=_("run"),
        on_delete=models.CASCADE,
        related_name="backfill_counts",
        db_index=False,  # served by backfill_count_unique
    )
    rfm_tier = models.CharField(  # noqa: DJ001 - NULL: no tier, as in CustomerMetrics
        _("RFM tier"), max_length=20, choices=RfmTier.choices, null=True, blank=True
    )
    lifecycle_state = models.CharField(
        _("lifecycle state"), max_length=12, choices=LifecycleState.choices
    )
    customers = models.PositiveIntegerField(pgettext_lazy("count", "customers"))

    class Meta:
        verbose_name = _("backfill figure")
        verbose_name_plural = _("backfill figures")
        constraints = [
            models.UniqueConstraint(
                fields=["run", "rfm_tier", "lifecycle_state"],
                name="backfill_count_unique",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        tier = self.get_rfm_tier_display() if self.rfm_tier else "—"
        state = self.get_lifecycle_state_display()
        return f"#{self.run_id} {state} · {tier}: {self.customers}"


class SegmentKind(models.TextChoices):
    DYNAMIC = "dynamic", _("Dynamic (rule)")
    STATIC = "static", _("Static (list)")


class Segment(models.Model):
    """A 人群. Dynamic segments are defined by a rule tree (see `segments.rules`) and refreshed
    after each recomputation; static ones hold an uploaded list. `rule_version` grows with every
    change of the rule, and each membership row records the version it came from."""

    name = models.CharField(_("name"), max_length=128, unique=True)
    description = models.CharField(_("description"), max_length=255, blank=True)
    kind = models.CharField(
        _("kind"), max_length=8, choices=SegmentKind.choices, default=SegmentKind.DYNAMIC
    )
    rule = models.JSONField(_("rule"), null=True, blank=True)
    rule_version = models.PositiveIntegerField(_("rule version"), default=1)
    member_count = models.PositiveIntegerField(_("members"), default=0)
    # Pinned segments draw their size over time on the overview (运营看板).
    pinned = models.BooleanField(_("pinned to the overview"), default=False)
    refreshed_at = models.DateTimeField(_("refreshed at"), null=True, blank=True)
    refresh_error = models.TextField(_("refresh error"), blank=True)
    created_by = models.CharField(_("created by"), max_length=128, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="static") | Q(rule__isnull=False),
                name="segment_dynamic_has_rule",
            )
        ]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(models.Model):
    """A customer currently in a segment."""

    # Neither key has a database constraint: a refresh writes up to a million rows at once, and
    # the per-row checks took some 40 % of that (measured at a million members). Members are
    # written only by the segment services, under the segment's row lock and the shared
    # customer-removal lock, which is what the constraints would check; deleting a segment or
    # a customer deletes its members.
    segment = models.ForeignKey(
        Segment,
        verbose_name=_("segment"),
        on_delete=models.CASCADE,
        related_name="memberships",
        db_index=False,
        db_constraint=False,
    )
    customer = models.ForeignKey(  # served by membership_by_customer_seg
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="segment_memberships",
        db_index=False,
        db_constraint=False,
    )
    rule_version = models.PositiveIntegerField(_("rule version"))
    entered_at = models.DateTimeField(_("entered at"), default=timezone.now)

    class Meta:
        verbose_name = _("segment member")
        verbose_name_plural = _("segment members")
        constraints = [
            models.UniqueConstraint(
                fields=["segment", "customer"], name="segment_membership_unique"
            )
        ]
        indexes = [models.Index(fields=["customer", "segment"], name="membership_by_customer_seg")]

    def __str__(self) -> str:
        return str(self.segment.name)


class SegmentMembershipEventKind(models.TextChoices):
    ENTERED = "entered", _("Entered")
    EXITED = "exited", _("Exited")


class SegmentMembershipEvent(models.Model):
    """Append-only history of customers entering and leaving segments."""

    segment = models.ForeignKey(
        Segment,
        verbose_name=_("segment"),
        on_delete=models.CASCADE,
        related_name="membership_events",
        db_index=False,
    )
    customer = models.ForeignKey(  # served by segment_event_by_customer
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    kind = models.CharField(_("kind"), max_length=8, choices=SegmentMembershipEventKind.choices)
    rule_version = models.PositiveIntegerField(_("rule version"))
    at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        verbose_name = _("segment membership event")
        verbose_name_plural = _("segment membership events")
        indexes = [
            models.Index(fields=["segment", "at"], name="segment_event_by_segment"),
            models.Index(fields=["customer", "at"], name="segment_event_by_customer"),
        ]

    def __str__(self) -> str:
        return f"#{self.segment_id} #{self.customer_id} {self.get_kind_display()}"


class SegmentSizeSnapshot(models.Model):
    """The size of a segment after each refresh: its size time series."""

    segment = models.ForeignKey(
        Segment, verbose_name=_("segment"), on_delete=models.CASCADE, related_name="size_history"
    )
    at = models.DateTimeField(_("at"), default=timezone.now)
    size = models.PositiveIntegerField(_("size"))
    entered = models.PositiveIntegerField(_("entered"), default=0)
    exited = models.PositiveIntegerField(_("exited"), default=0)
    rule_version = models.PositiveIntegerField(_("rule version"))

    class Meta:
        verbose_name = _("segment size")
        verbose_name_plural = _("segment sizes")
        ordering = ["-at", "-id"]
        # The overview reads the pinned segments' sizes over a period, and the size before it.
        indexes = [models.Index(fields=["segment", "at"], name="size_snapshot_by_segment")]

    def __str__(self) -> str:
        return f"#{self.segment_id} {timezone.localtime(self.at):%Y-%m-%d %H:%M}: {self.size}"


class ModelName(models.TextChoices):
    LIFETIME_VALUE = "lifetime_value", _("Lifetime value (BG/NBD + Gamma-Gamma)")
    CHURN_RISK = "churn_risk", _("Churn risk")
    BEHAVIOUR_CLUSTERS = "behaviour_clusters", _("Behaviour clusters")


class ModelFitStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    FITTED = "fitted", _("Fitted")
    INSUFFICIENT_DATA = "insufficient_data", _("Too little data")
    FAILED = "failed", _("Failed")


class ModelFit(models.Model):
    """One fit of a predictive model: its version (per name), the data it saw, what it learnt
    (`parameters`) and how good it is on data it did not see (`metrics`). A fit that found too
    little data says why in `reason` and learns nothing. Customers are scored with the latest
    fitted version of each model; `artifact` holds an estimator that parameters cannot express
    (the churn classifier), signed so that only this application's own bytes are loaded."""

    name = models.CharField(_("model"), max_length=24, choices=ModelName.choices)
    version = models.PositiveIntegerField(_("version"))
    status = models.CharField(
        _("status"), max_length=20, choices=ModelFitStatus.choices, default=ModelFitStatus.RUNNING
    )
    trigger = models.CharField(_("trigger"), max_length=32)
    as_of = models.DateField(_("as of"))
    training_start = models.DateField(_("training window start"), null=True, blank=True)
    training_end = models.DateField(_("training window end"), null=True, blank=True)
    features = ArrayField(
        models.CharField(max_length=64), verbose_name=_("features"), default=list, blank=True
    )
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    metrics = models.JSONField(_("quality"), default=dict, blank=True)
    training_rows = models.PositiveIntegerField(_("training rows"), default=0)
    seed = models.IntegerField(_("seed"), default=0)
    reason = models.TextField(_("why not fitted"), blank=True)
    artifact = models.BinaryField(null=True, blank=True, editable=False)
    artifact_signature = models.CharField(max_length=64, blank=True, editable=False)
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    scored_at = models.DateTimeField(_("last scored at"), null=True, blank=True)
    scored_customers = models.PositiveIntegerField(_("customers scored"), default=0)

    class Meta:
        verbose_name = _("model fit")
        verbose_name_plural = _("model fits")
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="model_fit_version_unique")
        ]
        permissions = [("request_fit", _("Can request a fit of the predictive models"))]

    def __str__(self) -> str:
        return f"{self.get_name_display()} v{self.version} ({self.get_status_display()})"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class CustomerPrediction(models.Model):
    """One row per customer who has bought, written by the scoring of the predictive models,
    only where a value changed. A customer who never paid has no row (no value to predict
    from). Lifetime value and expected purchases cover PREDICTIVE_CLV_HORIZON_MONTHS; churn
    risk is the probability of no paid order within PREDICTIVE_CHURN_HORIZON_DAYS; `cluster`
    is the number of the customer's cluster in the latest clustering."""

    customer = models.OneToOneField(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="prediction",
        db_constraint=False,
    )
    predicted_value = models.DecimalField(
        _("predicted value"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    expected_purchases = models.DecimalField(
        _("expected purchases"), max_digits=10, decimal_places=3, null=True, blank=True
    )
    p_alive = models.DecimalField(
        _("probability alive"), max_digits=5, decimal_places=4, null=True, blank=True
    )
    churn_risk = models.DecimalField(
        _("churn risk"), max_digits=5, decimal_places=4, null=True, blank=True
    )
    cluster = models.PositiveSmallIntegerField(_("cluster"), null=True, blank=True)
    scored_at = models.DateTimeField(_("scored at"), default=timezone.now)

    class Meta:
        verbose_name = _("customer prediction")
        verbose_name_plural = _("customer predictions")

    def __str__(self) -> str:
        return gettext("#%(customer)s: predicted value %(value)s, churn risk %(risk)s") % {
            "customer": self.customer_id,
            "value": self.predicted_value,
            "risk": self.churn_risk,
        }
