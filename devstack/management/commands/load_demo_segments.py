"""`load_demo_segments [--if-empty]`: a few segments an operator of the demo brand would keep,
materialised at once (run after the demo data and a recomputation), those it follows pinned
to the overview (运营看板). Their size history starts at this first refresh: the demo's past
is not replayed, since members' states are known only as of now."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from segments.models import Segment
from segments.services.segments import segment_create, segment_refresh, segments_pin

DEMO_SEGMENTS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "重要价值客户",
        "RFM 三项皆高：优先维护",
        {"field": "rfm_tier", "op": "eq", "value": "important_value"},
    ),
    (
        "沉睡高消费客户",
        "沉睡或流失、累计消费不低于 1000：唤醒对象",
        {
            "all": [
                {"field": "lifecycle_state", "op": "in", "value": ["sleeping", "churned"]},
                {"field": "spend", "op": "gte", "value": 1000},
            ]
        },
    ),
    (
        "近 30 天新客",
        "首单 30 天内，且未拒收企业微信消息",
        {
            "all": [
                {"field": "lifecycle_state", "op": "eq", "value": "new"},
                {"not": {"field": "consent.wecom", "op": "eq", "value": "opted_out"}},
            ]
        },
    ),
    (
        "护肤复购客户",
        "一年内至少两次购买护肤品",
        {
            "field": "purchased",
            "op": "gte",
            "value": 2,
            "params": {"category": ["护肤"], "within_days": 365},
        },
    ),
    (
        "高流失风险复购客户",
        "买过两次以上、流失风险不低于 0.7（预测模型拟合后才有成员）：挽回对象",
        {
            "all": [
                {"field": "order_count", "op": "gte", "value": 2},
                {"field": "churn_risk", "op": "gte", "value": 0.7},
            ]
        },
    ),
]

# Followed on the overview: whom to wake, whom to welcome, whom to keep.
DEMO_PINNED = ["沉睡高消费客户", "近 30 天新客", "重要价值客户"]


class Command(BaseCommand):
    help = "Create and materialise the demo brand's segments."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing if any segment exists."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and Segment.objects.exists():
            self.stdout.write("Segments exist already: demo segments not loaded.")
            return
        for name, description, rule in DEMO_SEGMENTS:
            segment = Segment.objects.filter(name=name).first() or segment_create(
                name=name, kind="dynamic", rule=rule, description=description, actor="demo"
            )
            outcome = segment_refresh(segment_id=segment.pk)
            self.stdout.write(f"Segment {name}: {outcome.size} members.")
        pinned = Segment.objects.filter(name__in=DEMO_PINNED).values_list("pk", flat=True)
        segments_pin(segment_ids=list(pinned), pinned=True, actor="demo")
