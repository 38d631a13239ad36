"""Consent reads: who opted out of a channel, as SQL that other apps' set-based statements
embed (campaigns' planning, reservation and send-time check), so that the rule is written
once."""

from crm.models import ConsentStatus


def opted_out_sql(*, channel_param: str) -> str:
    """SQL of a relation holding `customer_id` of every customer who opted out of the channel
    given as the named query parameter `channel_param`, once each (consent_unique_channel).
    No decision on the channel is not opting out. Joined on customer_id it is served by
    consent_unique_channel; read by channel, by the partial index consent_opted_out."""
    return (
        f"SELECT customer_id FROM crm_consent"  # noqa: S608 - constants and a placeholder
        f" WHERE channel = %({channel_param})s AND status = '{ConsentStatus.OPTED_OUT}'"
    )
