"""Celery entry points of crm: thin wrappers that call one service each."""

from celery import shared_task

from crm.wecom.tag_push import wecom_tag_pushes_send


@shared_task(name="crm.wecom_tag_push", ignore_result=True)
def wecom_tag_push_task() -> dict[str, int]:
    """After a tag change here, and every five minutes (beat): push the tag changes waiting for
    WeCom. Safe to run twice, or two at once."""
    return wecom_tag_pushes_send()
