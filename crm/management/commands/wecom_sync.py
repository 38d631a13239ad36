"""`wecom_sync [--contacts] [--tags] [--groups]`: a full sync with WeCom now (no flag: every
scope), printing its progress (items read of those expected) and the changes it made. A run
left running (stopped halfway) is resumed from its cursor. Exits non-zero when the run fails."""

import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.utils.translation import gettext as _

from core.actors import actor_label
from crm.models import WeComSyncRun, WeComSyncStatus
from crm.wecom.registry import SYNC_SCOPES
from crm.wecom.sync import is_walked_elsewhere, wecom_sync_run
from crm.wecom.sync_labels import change_lines

# How often the progress line is printed while the run goes on.
PROGRESS_SECONDS = 5.0


class Command(BaseCommand):
    help = "Sync customers, tags and group chats from WeCom now (no flag: all of them)."

    def add_arguments(self, parser: CommandParser) -> None:
        for scope in SYNC_SCOPES:
            parser.add_argument(f"--{scope}", action="store_true", help=f"Sync {scope}.")

    def handle(self, *args: Any, **options: Any) -> None:
        scopes = [scope for scope in SYNC_SCOPES if options.get(scope)] or list(SYNC_SCOPES)
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["run"] = wecom_sync_run(scopes=scopes, trigger="command")
            except Exception as error:  # reported by the main thread
                outcome["error"] = error
            finally:
                connection.close()

        worker = threading.Thread(target=run, name="wecom-sync")
        worker.start()
        while worker.is_alive():
            worker.join(PROGRESS_SECONDS)
            if worker.is_alive():
                self._progress()
        if "error" in outcome:
            raise CommandError(
                _("The sync failed: %(error)s") % {"error": type(outcome["error"]).__name__}
            )
        finished: WeComSyncRun = outcome["run"]
        if is_walked_elsewhere(finished):
            self.stdout.write(
                _("Another sync is running (started by %(trigger)s); this one did nothing.")
                % {"trigger": actor_label(finished.trigger)}
            )
            return
        self.stdout.write(
            _("Sync finished: %(done)d items read of %(total)d expected.")
            % {"done": finished.items_done, "total": finished.items_total or 0}
        )
        lines = change_lines(finished.changes)
        self.stdout.write("\n".join(lines) if lines else _("Nothing changed."))

    def _progress(self) -> None:
        run = WeComSyncRun.objects.filter(status=WeComSyncStatus.RUNNING).first()
        if run is None:
            return
        self.stdout.write(
            _("Read %(done)d of %(total)s items …")
            % {"done": run.items_done, "total": run.items_total if run.items_total else "?"}
        )
