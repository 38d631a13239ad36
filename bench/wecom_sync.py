"""Full sync of WeCom contacts against the local fake: `--contacts` customers (default 100k) of
`--staff` staff members (default 30), about one in eight with a second staff member.

    .venv/bin/python bench/wecom_sync.py [--contacts 100000] [--staff 30] [--database-url URL]

Creates a scratch database (dropped first; default BENCH_DATABASE_URL with `_wecom` appended,
postgres://postgres@127.0.0.1:5432/crm_bench_wecom), migrates it, fills the fake's directory
(`Directory.generate`) and times, in one process:

- `first`: `wecom_sync_run(scopes=["contacts"])` on an empty database (every customer new);
  the contacts scope alone: the tags and groups steps, registered too, are not run, so no tag
  group is mirrored and the relations' corp tags give no `wecom` tag holdings;
- `second`: the same again (nothing to write: WeCom read, compared, nothing changed), after
  an untimed VACUUM ANALYZE of the tables the first run filled, as autovacuum would have
  done by the next night (the scratch server may run without autovacuum);
- `read_floor`: the same pages read from the fake through wechatpy, nothing applied;
- `write_floor`: COPY of the rows the first run wrote (customers, identities, relations) into
  the emptied tables, in a transaction rolled back (indexes maintained; deferred foreign keys
  not checked, as nothing commits).

The first run is reported against read_floor + write_floor (the ratio), the second against
read_floor. Results go to stdout and bench/results/wecom_sync.json (not committed).
"""

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TABLES = ("crm_customer", "crm_identity", "crm_wecomfollow")
CORP_ID, SECRET = "bench-corp", "bench-secret"


def _prepare_database(url: str) -> None:
    name = url.rsplit("/", 1)[1].split("?")[0]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _read_floor(client: object, userids: list[str]) -> tuple[float, int]:
    started = time.monotonic()
    read = 0
    for userid in userids:
        cursor = ""
        while True:
            page = client.post(  # type: ignore[attr-defined]
                "externalcontact/batch/get_by_user",
                data={"userid_list": [userid], "cursor": cursor, "limit": 100},
            )
            read += len(page["external_contact_list"])
            cursor = page.get("next_cursor") or ""
            if not cursor:
                break
    return time.monotonic() - started, read


def _write_floor() -> float:
    from django.db import connection, transaction

    dumps: dict[str, bytes] = {}
    raw = connection.cursor().connection
    with raw.cursor() as cursor:
        for table in TABLES:
            buffer = io.BytesIO()
            with cursor.copy(f"COPY {table} TO STDOUT (FORMAT binary)") as copy:
                for chunk in copy:
                    buffer.write(chunk)
            dumps[table] = buffer.getvalue()
    with transaction.atomic():
        with raw.cursor() as cursor:
            cursor.execute(f"TRUNCATE {', '.join(TABLES)} CASCADE")
            started = time.monotonic()
            for table in TABLES:
                with cursor.copy(f"COPY {table} FROM STDIN (FORMAT binary)") as copy:
                    copy.write(dumps[table])
            elapsed = time.monotonic() - started
        transaction.set_rollback(True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--staff", type=int, default=30)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/crm_bench")
        + "_wecom",
    )
    args = parser.parse_args()
    _prepare_database(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import logging

    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from crm.wecom.client import WeComClient
    from crm.wecom.sync import wecom_sync_run
    from devstack.wecom_directory import Directory
    from devstack.wecom_fake import FakeWeCom, FakeWeComConfig

    logging.disable(logging.INFO)
    call_command("migrate", verbosity=0)
    generated = time.monotonic()
    directory = Directory.generate(
        staff=args.staff, contacts=args.contacts, chats=0, tags=200, seed=18
    )
    relations = len(directory.follows)
    print(
        f"directory: {args.contacts} contacts, {relations} relations, {args.staff} staff "
        f"({time.monotonic() - generated:.1f} s to generate)",
        flush=True,
    )
    results: dict[str, object] = {"contacts": args.contacts, "relations": relations}
    load_at_start = os.getloadavg()
    with FakeWeCom(FakeWeComConfig(corps={CORP_ID: SECRET})) as fake:
        fake.directory = directory
        settings.WECOM_API_BASE_URL = fake.api_base_url
        settings.WECOM_CORP_ID = CORP_ID
        settings.WECOM_SECRET = SECRET
        for phase in ("first", "second"):
            started = time.monotonic()
            run = wecom_sync_run(scopes=["contacts"], trigger="command")
            seconds = time.monotonic() - started
            results[phase] = {"seconds": round(seconds, 2), "changes": run.changes}
            print(f"{phase}: {seconds:.1f} s, changes {run.changes}", flush=True)
            if phase == "first":
                # The nightly run comes a day later: autovacuum has analyzed the tables the
                # first run filled by then (without statistics, each page's owner query
                # scans every relation, and the second run times the missing ANALYZE).
                with connection.cursor() as cursor:
                    cursor.execute(f"VACUUM ANALYZE {', '.join(TABLES)}")
        client = WeComClient(fake.api_base_url, CORP_ID, SECRET)
        read_seconds, read = _read_floor(client, sorted(directory.staff))
        assert read == relations, (read, relations)
        write_seconds = _write_floor()
    results["read_floor_seconds"] = round(read_seconds, 2)
    results["write_floor_seconds"] = round(write_seconds, 2)
    first = results["first"]["seconds"]  # type: ignore[index]
    second = results["second"]["seconds"]  # type: ignore[index]
    results["first_ratio"] = round(first / (read_seconds + write_seconds), 2)
    results["second_ratio"] = round(second / read_seconds, 2)
    results["first_us_per_relation"] = round(first * 1e6 / relations)
    results["load_average"] = {
        "start": [round(load, 2) for load in load_at_start],
        "end": [round(load, 2) for load in os.getloadavg()],
    }
    print(
        f"read floor {read_seconds:.1f} s, write floor (COPY) {write_seconds:.1f} s; "
        f"first run {results['first_ratio']}× (read + write floor), "
        f"second run {results['second_ratio']}× read floor; "
        f"{results['first_us_per_relation']} µs per relation on the first run; "
        f"load average {results['load_average']}",
        flush=True,
    )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "wecom_sync.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
