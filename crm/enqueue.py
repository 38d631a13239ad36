"""The tasks the CRM's services queue, each published once the caller's transaction commits
(`core.enqueue`): one typed function per task of `crm.tasks`, by its stable name, with ids
only. Services import this module, never the tasks module."""

from core.enqueue import enqueue_on_commit


def wecom_event_process(*, event_id: int) -> None:
    """`crm.wecom_event_process`: apply one stored WeCom callback event."""
    enqueue_on_commit("crm.wecom_event_process", event_id)


def wecom_tag_push() -> None:
    """`crm.wecom_tag_push`: push the tag changes waiting for WeCom (no arguments: the task
    reads what is waiting)."""
    enqueue_on_commit("crm.wecom_tag_push")
