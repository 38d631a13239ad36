"""`{% load business_time %}`, then `{{ moment|business_time }}`: a moment in business time with
its zone ("2026年12月5日 14:00（北京时间）"), "—" for none (core.business_time)."""

from datetime import datetime

from django import template

from core.business_time import business_time_label

register = template.Library()


@register.filter
def business_time(value: datetime | None) -> str:
    return business_time_label(value, empty="—")
