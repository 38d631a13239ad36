"""The deliveries ledger when customers merge: the merged customer's deliveries (and their
conversions) move to the survivor, so that its contact history, hence its frequency caps,
stays whole. Run inside crm's merge transaction (subscribed in CampaignsConfig.ready)."""

from django.db import connection

# Both were in one campaign: the survivor's delivery stays (the unique key allows one), and
# the merged customer's goes with its conversions.
_STATEMENTS = (
    (
        "-",
        """
        DELETE FROM campaigns_conversion v USING campaigns_delivery l, campaigns_delivery s
        WHERE v.delivery_id = l.id AND l.customer_id = %(loser)s AND s.customer_id = %(survivor)s
          AND s.campaign_id = l.campaign_id AND s.step = l.step
        """,
    ),
    (
        "-",
        """
        DELETE FROM campaigns_delivery l USING campaigns_delivery s
        WHERE l.customer_id = %(loser)s AND s.customer_id = %(survivor)s
          AND s.campaign_id = l.campaign_id AND s.step = l.step
        """,
    ),
    (
        "deliveries",
        "UPDATE campaigns_delivery SET customer_id = %(survivor)s WHERE customer_id = %(loser)s",
    ),
    (
        "conversions",
        "UPDATE campaigns_conversion SET customer_id = %(survivor)s WHERE customer_id = %(loser)s",
    ),
)


def deliveries_merge(survivor_id: int, merged_id: int) -> dict[str, int]:
    """Move the merged customer's deliveries to the survivor; answers the counts moved."""
    moved: dict[str, int] = {}
    params = {"survivor": survivor_id, "loser": merged_id}
    with connection.cursor() as cursor:
        for name, statement in _STATEMENTS:
            cursor.execute(statement, params)
            if name != "-":
                moved[name] = cursor.rowcount
    return moved
