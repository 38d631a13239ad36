"""What the WeCom package's parts offer each other, filled when `crm` is ready: the handler of
each callback event (`handles`) and the step of each full-sync scope (`sync_step`).

A handler gets one decrypted event and applies it through crm.services; it must be safe to run
twice and against events arriving out of order (an edit before its add): it reads WeCom's
current state where the event alone does not say it, and compares `event.event_at` with what
was applied last. It returns the outcome stored on the event: "applied" or "ignored"."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from crm.models import WeComSyncRun
from crm.wecom.client import WeComClient


@dataclass(frozen=True)
class CallbackEvent:
    event: str  # <Event>, e.g. change_external_contact
    change_type: str  # <ChangeType>, e.g. add_external_contact
    event_at: datetime  # <CreateTime>
    # Every element of the message by tag name, as xmltodict parses it (nested elements such
    # as MemChangeList are dicts or lists of dicts).
    fields: Mapping[str, Any]
    event_id: int  # the stored WeComEvent


Handler = Callable[[CallbackEvent], str]
SyncStep = Callable[["SyncContext"], None]

HANDLERS: dict[tuple[str, str], Handler] = {}
# Scopes in the order a full sync walks them: tags first (relations name them), then contacts
# (chats name them), then group chats.
SYNC_SCOPES = ("tags", "contacts", "groups")
SYNC_STEPS: dict[str, SyncStep] = {}


def handles(event: str, *change_types: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of these (event, change type) pairs."""

    def register(handler: Handler) -> Handler:
        for change_type in change_types:
            key = (event, change_type)
            assert key not in HANDLERS, f"two handlers for {key}"
            HANDLERS[key] = handler
        return handler

    return register


def sync_step(scope: str) -> Callable[[SyncStep], SyncStep]:
    assert scope in SYNC_SCOPES, scope

    def register(step: SyncStep) -> SyncStep:
        assert scope not in SYNC_STEPS, f"two sync steps for {scope}"
        SYNC_STEPS[scope] = step
        return step

    return register


class SyncContext:
    """What a step gets: the run, the API client, and ways to keep its place and counts."""

    def __init__(self, run: WeComSyncRun, client: WeComClient) -> None:
        self.run = run
        self.client = client

    def cursor(self, scope: str) -> dict[str, Any]:
        """The place the step of `scope` saved last ({} at its start)."""
        return dict(self.run.cursor.get(scope, {}))

    def cursor_save(self, scope: str, place: dict[str, Any]) -> None:
        """Keep the step's place; call it inside the transaction that applied the page read
        up to there, so that place and writes commit together."""
        self.run.cursor = {**self.run.cursor, scope: place}
        self.run.heartbeat_at = timezone.now()
        WeComSyncRun.objects.filter(pk=self.run.pk).update(
            cursor=self.run.cursor, heartbeat_at=self.run.heartbeat_at
        )

    def count(self, changes: dict[str, int], *, items_read: int = 0) -> None:
        """Add to the run's change counts (kinds with 0 are left out) and to the items read."""
        changes = {kind: n for kind, n in changes.items() if n}
        for kind, n in changes.items():
            self.run.changes[kind] = self.run.changes.get(kind, 0) + n
        self.run.items_done += items_read
        WeComSyncRun.objects.filter(pk=self.run.pk).update(
            changes=self.run.changes, items_done=F("items_done") + items_read
        )

    def expect(self, items: int) -> None:
        """Add to the number of items the run expects to read (for its progress)."""
        WeComSyncRun.objects.filter(pk=self.run.pk).update(
            items_total=Coalesce(F("items_total"), 0) + items
        )
