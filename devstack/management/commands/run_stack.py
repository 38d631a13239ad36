"""`run_stack [--port 8000] [--no-demo]`: the body of `make run`.

Prepares the database (migrate, operator login, quickstart API key, static files, demo data
once, a recomputation of scores, demo segments and campaigns and a first fit of the predictive
models once), then runs gunicorn, a Celery worker and Celery beat as child processes until
Ctrl-C or SIGTERM. If any child dies, everything is stopped and the command exits non-zero.
When DATABASE_URL was not set, the embedded PostgreSQL started by the settings is stopped at
the end.

Unless WECOM_API_BASE_URL is set, campaigns must not reach the real WeCom: the local WeCom fake
(`devstack.wecom_fake`) runs as a fourth child on loopback, and web and worker are pointed at
it (WECOM_API_BASE_URL, and WECOM_CORP_ID / WECOM_SECRET unless set: the demo corp, whose
customers the demo data holds, and a made-up secret).

Secrets that must survive restarts (the operator password unless CRM_OPERATOR_PASSWORD is set,
and the quickstart key, whose plain form cannot be recovered from the database) are kept in
CRM_LOCAL_DIR with mode 0600.
"""

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, connections

from config import embedded
from console.overview import overview_refresh
from core.services.api_keys import api_key_authenticate, api_key_create
from crm.tasks import wecom_sync_task
from devstack.demo import DEMO_CORP_ID
from devstack.wecom_fake import ADMIN_PREFIX, API_PREFIX

OPERATOR_USERNAME = "operator"
QUICKSTART_KEY_NAME = "quickstart"
OPERATOR_PASSWORD_FILE = "operator_password"  # noqa: S105 - a file name
QUICKSTART_KEY_FILE = "quickstart_api_key"
STOP_TIMEOUT_SECONDS = 20.0
READY_TIMEOUT_SECONDS = 60.0
# The WeCom fake's port when it is free (the README's `python -m devstack.wecom_fake` uses it
# too); another stack on the machine may hold it, and then any free port is taken.
WECOM_FAKE_PORT = 8811
# Seconds between the demo corp's customer arrivals (devstack.demo_wecom.LiveArrivals).
LIVE_EVERY_SECONDS = 20
WECOM_FAKE_SECRET = "local-wecom-fake-secret"  # noqa: S105 - the fake accepts any secret
# The local stack's callback Token and EncodingAESKey (unless set), with which
# `manage.py wecom_callback_send` signs the events it plays as WeCom.
WECOM_LOCAL_CALLBACK_TOKEN = "local-callback-token"  # noqa: S105 - loopback only
WECOM_LOCAL_CALLBACK_AES_KEY = "bG9jYWwtY2FsbGJhY2stYWVzLWtleS0zMi1ieXRlcyE"


class Command(BaseCommand):
    help = "Run web (gunicorn), Celery worker and beat with demo data: the body of `make run`."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-demo", action="store_true", help="Do not load demo data.")

    def handle(self, *args: Any, port: int, no_demo: bool, **options: Any) -> None:
        # The settings already started the embedded server if DATABASE_URL is unset.
        uses_embedded_postgres = not os.environ.get("DATABASE_URL")
        try:
            self._run(port=port, no_demo=no_demo)
        finally:
            connections.close_all()
            if uses_embedded_postgres:
                self.stdout.write("Stopping the embedded PostgreSQL...")
                embedded.postgres_stop()

    def _run(self, *, port: int, no_demo: bool) -> None:
        local = embedded.local_dir()
        call_command("migrate", interactive=False, verbosity=1, stdout=self.stdout)
        password = _operator_password(local)
        _ensure_operator(password)
        raw_key = _quickstart_key(local)
        call_command("collectstatic", interactive=False, verbosity=0)
        if not no_demo:
            call_command("load_demo_data", if_empty=True, stdout=self.stdout)
            _analyze()
        # Scores before the first nightly run, so that the admin shows them at once.
        call_command("recompute", no_progress=True, stdout=self.stdout)
        if not no_demo:
            call_command("load_demo_segments", if_empty=True, stdout=self.stdout)
            call_command("load_demo_campaigns", if_empty=True, stdout=self.stdout)
            call_command("load_demo_contact_ways", if_empty=True, stdout=self.stdout)
            # Predictions before the first weekly fit, so that the admin shows them at once.
            call_command("fit_models", if_never_fitted=True, stdout=self.stdout)
            _analyze()
        # The overview's figures of the data just loaded, before beat's first refresh.
        overview_refresh()
        connections.close_all()  # the children open their own

        wecom_fake_port = _wecom_fake_port()
        stack = _Stack(self._child_env(local, wecom_fake_port), stdout=self.stdout)
        stack.start(port, wecom_fake_port=wecom_fake_port, demo=not no_demo)
        try:
            if stack.wait_ready(port):
                live = wecom_fake_port is not None and not no_demo
                if live:
                    # The demo corp's customers, tags and chats, read by the worker while the
                    # banner shows: a full sync takes longer than a quick start should wait.
                    wecom_sync_task.delay(trigger="system")
                self._banner(port, password, raw_key, local, wecom_fake_port, live=live)
            stack.supervise()
        finally:
            stack.stop()
        if stack.failure:
            raise CommandError(stack.failure, returncode=1)

    def _child_env(self, local: Path, wecom_fake_port: int | None = None) -> dict[str, str]:
        """The children share this process's database and broker instead of each starting
        the embedded server, and the WeCom fake on `wecom_fake_port` when there is one."""
        env = dict(os.environ)
        if wecom_fake_port is not None:
            env.update(_wecom_fake_env(wecom_fake_port))
        env["DATABASE_URL"] = str(settings.DATABASE_URL)
        env["CRM_LOCAL_DIR"] = str(local)
        env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        # CELERY_BROKER_URL is passed on only when the user set it: the settings derive the
        # filesystem broker's folders only when it is unset, and that broker needs no server.
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _banner(
        self,
        port: int,
        password: str,
        raw_key: str,
        local: Path,
        wecom_fake_port: int | None = None,
        *,
        live: bool = False,
    ) -> None:
        base = f"http://127.0.0.1:{port}"
        lines = [
            "",
            "=" * 72,
            "  Private-domain CRM is running (Ctrl-C stops everything)",
            f"  Admin:       {base}/admin/",
            f"  API docs:    {base}/api/docs/",
            f"  Health:      {base}/healthz",
        ]
        if wecom_fake_port is not None:
            fake = _wecom_fake_url(wecom_fake_port)
            lines += [
                f"  WeCom fake:  {fake}{ADMIN_PREFIX}messages  (what campaigns sent;",
                f"               API {fake}{API_PREFIX}, switches under {fake}{ADMIN_PREFIX})",
            ]
            if live:
                lines += [
                    "               Its demo corp is being synced now, and every "
                    f"{LIVE_EVERY_SECONDS:g} s a new",
                    "               customer scans a channel QR code: see the admin's 客户,",
                    "               渠道活码 and 企业微信回调事件.",
                ]
        auth = f'-H "Authorization: Api-Key {raw_key}"'
        lines += [
            f"  Login:       {OPERATOR_USERNAME} / {password}",
            f"  API key:     {raw_key}",
            f"               (all scopes; kept in {local / QUICKSTART_KEY_FILE})",
            "  Try (the newest customers; the size of the sleeping ones):",
            f'    curl {auth} "{base}/api/v1/customers?page_size=3"',
            f'    curl {auth} -H "Content-Type: application/json" \\',
            f'      -d \'{{"rule": {{"field": "lifecycle_state", "op": "eq", '
            f'"value": "sleeping"}}}}\' {base}/api/v1/segments/preview',
            "=" * 72,
            "",
        ]
        self.stdout.write("\n".join(lines))
        self.stdout.flush()


def _wecom_fake_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def _wecom_fake_env(port: int) -> dict[str, str]:
    """WeCom settings that point web and worker at the fake on `port`. A corp id or secret
    set in the environment is kept (the fake accepts any); else the demo corp's id, so that
    the demo customers' WeCom identities are the ones the campaigns address."""
    return {
        "WECOM_API_BASE_URL": f"{_wecom_fake_url(port)}{API_PREFIX}",
        "WECOM_CORP_ID": os.environ.get("WECOM_CORP_ID") or DEMO_CORP_ID,
        "WECOM_SECRET": os.environ.get("WECOM_SECRET") or WECOM_FAKE_SECRET,
        "WECOM_CALLBACK_TOKEN": (
            os.environ.get("WECOM_CALLBACK_TOKEN") or WECOM_LOCAL_CALLBACK_TOKEN
        ),
        "WECOM_CALLBACK_AES_KEY": (
            os.environ.get("WECOM_CALLBACK_AES_KEY") or WECOM_LOCAL_CALLBACK_AES_KEY
        ),
    }


def _wecom_fake_port() -> int | None:
    """The port for the WeCom fake, or None when WECOM_API_BASE_URL names a WeCom to use."""
    return None if os.environ.get("WECOM_API_BASE_URL") else _free_port()


def _free_port(preferred: int = WECOM_FAKE_PORT) -> int:
    """`preferred` when nothing listens on it on loopback, else a port the system picks. Probed
    as the fake's server binds (SO_REUSEADDR), so a port left in TIME_WAIT still counts as
    free; the fake binds it a moment later, and a child that cannot stops the stack."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise CommandError("No free port on 127.0.0.1 for the WeCom fake.")


def _write_secret(path: Path, value: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(value + "\n")
    path.chmod(0o600)


def _operator_password(local: Path) -> str:
    from_env = os.environ.get("CRM_OPERATOR_PASSWORD")
    if from_env:
        return from_env
    path = local / OPERATOR_PASSWORD_FILE
    if path.exists() and path.read_text().strip():
        return path.read_text().strip()
    password = secrets.token_urlsafe(12)
    _write_secret(path, password)
    return password


def _ensure_operator(password: str) -> None:
    user_model = get_user_model()
    user = user_model.objects.filter(username=OPERATOR_USERNAME).first()
    if user is None:
        user_model.objects.create_superuser(username=OPERATOR_USERNAME, password=password)
        return
    if not (
        user.is_active and user.is_staff and user.is_superuser and user.check_password(password)
    ):
        user.is_active = user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()


def _quickstart_key(local: Path) -> str:
    """The stored quickstart key if it still authenticates, else a new one (stored 0600)."""
    path = local / QUICKSTART_KEY_FILE
    if path.exists():
        raw_key = path.read_text().strip()
        api_key = api_key_authenticate(raw_key) if raw_key else None
        if api_key is not None and api_key.name == QUICKSTART_KEY_NAME:
            return raw_key
    _, raw_key = api_key_create(name=QUICKSTART_KEY_NAME, scopes=["*"], actor="command")
    _write_secret(path, raw_key)
    return raw_key


def _commands(port: int, wecom_fake_port: int | None, *, demo: bool = True) -> dict[str, list[str]]:
    """The children's command lines by name; the WeCom fake first, so that it listens before
    web or worker may call it. With `demo`, the fake serves the demo corp and plays customers
    arriving through its channel QR codes, told to web's callback URL."""
    python = sys.executable
    commands: dict[str, list[str]] = {}
    if wecom_fake_port is not None:
        commands["wecom"] = [
            python,
            "-m",
            "devstack.wecom_fake",
            "--host",
            "127.0.0.1",
            "--port",
            str(wecom_fake_port),
        ]
        if demo:
            commands["wecom"] += [
                "--demo-corp",
                "--live-callback-url",
                f"http://127.0.0.1:{port}/wecom/callback",
                "--live-every",
                f"{LIVE_EVERY_SECONDS:g}",
            ]
    commands["web"] = [
        python,
        "-m",
        "gunicorn",
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--no-control-socket",  # several stacks may run on one machine
        "--timeout",
        "120",  # a customer export at its 100,000-row limit writes for up to a minute
        "--access-logfile",
        "-",
        # Identity values, searches and phone numbers of request lines redacted (as in
        # production: see docs/privacy.md, Logs).
        "--logger-class",
        "config.gunicorn_logging.RedactingLogger",
    ]
    commands["worker"] = [
        python,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--loglevel=INFO",
        "--concurrency=2",
    ]
    commands["beat"] = [
        python,
        "-m",
        "celery",
        "-A",
        "config",
        "beat",
        "--loglevel=INFO",
        "--scheduler",
        "django_celery_beat.schedulers:DatabaseScheduler",
    ]
    return commands


class _Stack:
    """The child processes, each in its own session so that a terminal's Ctrl-C reaches only
    this supervisor, which then stops them in order."""

    def __init__(self, env: dict[str, str], *, stdout: Any) -> None:
        self.env = env
        self.stdout = stdout
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stop_requested: str | None = None
        self.failure: str | None = None

    def start(self, port: int, *, wecom_fake_port: int | None = None, demo: bool = True) -> None:
        commands = _commands(port, wecom_fake_port, demo=demo)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)
        for name, command in commands.items():
            self.children[name] = subprocess.Popen(  # noqa: S603 - fixed argument lists
                command, env=self.env, cwd=settings.BASE_DIR, start_new_session=True
            )
            self.stdout.write(f"Started {name} (pid {self.children[name].pid})")

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_requested = signal.Signals(signum).name

    def _dead_child(self) -> str | None:
        for name, process in self.children.items():
            code = process.poll()
            if code is not None:
                return f"{name} exited with code {code}; stopped the stack."
        return None

    def wait_ready(self, port: int) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline and not self.stop_requested:
            self.failure = self._dead_child()
            if self.failure:
                return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        if not self.stop_requested:
            self.stdout.write(f"Web did not answer /healthz within {READY_TIMEOUT_SECONDS:.0f} s.")
            return True  # still print how to reach it; supervision goes on
        return False

    def supervise(self) -> None:
        while not self.stop_requested and not self.failure:
            self.failure = self._dead_child()
            time.sleep(0.5)

    def stop(self) -> None:
        if self.stop_requested:
            self.stdout.write(
                f"Received {self.stop_requested}: stopping {', '.join(self.children)}..."
            )
        elif self.failure:
            self.stdout.write(self.failure)
        # Ignore further Ctrl-C while shutting down: the children must not be orphaned.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
        for process in self.children.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for name, process in self.children.items():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self.stdout.write(f"{name} did not stop in time: killing it.")
                _kill_group(process)
                process.wait()
            else:
                _kill_group(process)  # leftovers of its session (pool processes), if any
        self.stdout.write("All processes stopped.")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _analyze() -> None:
    """Fresh planner statistics after the demo's bulk loads: autovacuum would take minutes to
    notice them, and meanwhile the planner's estimates (the admin's 约 N counts, the plans of
    the portrait and the overview) would be those of empty tables."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
