"""factory_boy factories for the segmentation models. Rows are written straight to their
tables: a segment so made has its rule unchecked and no refresh queued (`segment_create` does
both), and a metrics or prediction row holds what the test gives it rather than what a
recomputation or a scoring would compute."""

import factory
from django.utils import timezone

from segments import models
from tests.factories.crm import CustomerFactory

# A rule every customer matches.
EVERYONE = {"field": "member_level", "op": "gte", "value": 0}


class SegmentFactory(factory.django.DjangoModelFactory):
    """A dynamic segment of everyone unless `rule` says otherwise; a static one has no rule."""

    class Meta:
        model = models.Segment

    name = factory.Sequence(lambda n: f"人群{n}")
    kind = models.SegmentKind.DYNAMIC
    rule = factory.LazyAttribute(
        lambda o: dict(EVERYONE) if o.kind == models.SegmentKind.DYNAMIC else None
    )


class SegmentMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SegmentMembership

    segment = factory.SubFactory(SegmentFactory, kind=models.SegmentKind.STATIC)
    customer = factory.SubFactory(CustomerFactory)
    rule_version = factory.SelfAttribute("segment.rule_version")


class CustomerMetricsFactory(factory.django.DjangoModelFactory):
    """A customer's metrics row: a prospect's (the model's defaults) but for the values given."""

    class Meta:
        model = models.CustomerMetrics

    customer = factory.SubFactory(CustomerFactory)


class CustomerPredictionFactory(factory.django.DjangoModelFactory):
    """A customer's scores: none but those given (a model not fitted leaves its value empty)."""

    class Meta:
        model = models.CustomerPrediction

    customer = factory.SubFactory(CustomerFactory)


class RecomputeRunFactory(factory.django.DjangoModelFactory):
    """A full recomputation still running (one that crashed leaves this behind)."""

    class Meta:
        model = models.RecomputeRun

    kind = models.RecomputeKind.FULL
    trigger = "test"
    as_of = factory.LazyFunction(timezone.localdate)


class ModelFitFactory(factory.django.DjangoModelFactory):
    """A fit still running (one that crashed leaves this behind)."""

    class Meta:
        model = models.ModelFit

    name = models.ModelName.CHURN_RISK
    version = factory.Sequence(lambda n: n + 1)
    trigger = "test"
    as_of = factory.LazyFunction(timezone.localdate)


class LifecycleTransitionFactory(factory.django.DjangoModelFactory):
    """A move of a customer from active to sleeping now, unless told otherwise."""

    class Meta:
        model = models.LifecycleTransition

    customer = factory.SubFactory(CustomerFactory)
    from_state = models.LifecycleState.ACTIVE
    to_state = models.LifecycleState.SLEEPING
    at = factory.LazyFunction(timezone.now)
