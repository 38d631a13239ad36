"""Behaviour clusters described in the operator's language, from the traits a fit found
(segments.predictive.clusters). Apart from the fitting, so that reading a description loads no
machine-learning library."""

from collections.abc import Sequence

from django.utils.translation import gettext as _


def cluster_description(traits: Sequence[Sequence[str]]) -> str:
    """A cluster's traits in the operator's language, e.g. "高客单, 美妆为主, 近期活跃"."""
    words = {
        "high_order_value": _("high order value"),
        "low_order_value": _("low order value"),
        "long_inactive": _("long inactive"),
        "recently_active": _("recently active"),
        "frequent": _("frequent buyers"),
        "infrequent": _("infrequent buyers"),
        "engaged": _("engaged"),
    }
    parts = [
        _("mostly %(category)s") % {"category": trait[1]}
        if trait[0] == "mostly"
        else words[trait[0]]
        for trait in traits
    ]
    return ", ".join(parts) if parts else _("typical buyers")
