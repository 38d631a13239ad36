"""The campaign pipeline at scale: two campaigns over the same audience planned and reserved at
once, dispatch enqueued, and 100k new orders attributed, each against a bare-SQL floor.

    python bench/campaign_pipeline.py [--customers 1000000] [--orders 100000] [--reuse]
                              [--database-url URL]

A scratch database `<name>_cmp_<customers>` on the server of `--database-url` (default
BENCH_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/crm_bench) is dropped, created and
migrated unless `--reuse` finds its customers in place. Data is written by set-based SQL:
customers owned by 50 staff members, each with a WeCom identity (synthetic hashes: nothing is
sent to WeCom), 1 % opted out of WeCom, and one static segment holding everyone.

Stages, each timed on its own (the setup it needs is not timed):

- floor_write: the bare insert of one row per audience member into an unindexed copy of the
  deliveries table, best of three: what writing the ledger costs at the least;
- floor_write_indexed: the same into a copy with the ledger's indexes, as reserved rows with
  a call each: what writing one campaign's reserved deliveries costs before any judging;
- plan_reserve: two campaigns on the same segment (WeCom customer messages, no holdout, no
  quiet hours) planned and reserved to the end by two threads at once, as two workers would.
  The platform preset (1 a day) applies, so each customer may be reserved once in all; the
  stage then counts customers reserved more often than that (violations, must be 0);
  The reserving statements also write the WeCom calls (one per sender and text) and assign
  each reserved delivery its call, so this stage includes laying out the dispatch;
- dispatch_enqueue: every dispatch task the reservations queued (whole calls, about 1000
  deliveries a task) published to the real broker (Celery);
- first_attempts (no target: the workers' side of dispatch): each call's first attempt as a
  worker begins it, without calling WeCom: the attempt recorded, the last consent check, and
  the call's deliveries read with what their texts need;
- floor_join: the bare join of the new orders to the deliveries of their customers;
- attribute: ORDERS new paid orders (for as many customers) attributed against all deliveries.

Results go to stdout and bench/results/campaign_pipeline.json; progress to stderr.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crm_bench"
# Noon on a fixed business day: no quiet hours, one calendar day for the platform cap.
LAUNCH = datetime(2026, 11, 23, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
STAFF = 50
CORP_ID = "bench_corp"
FLOOR_RUNS = 3
TARGETS = {
    "plan_reserve": 10.0,
    "dispatch_enqueue": 30.0,
    "attribute": 5.0,
}


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def execute(sql: str, params: Any = None) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def fetch_one(sql: str, params: Any = None) -> tuple[Any, ...]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    assert row is not None
    return tuple(row)


def prepare(url: str, customers: int, *, reuse: bool) -> int:
    """The scratch database with its data; answers the audience segment's id."""
    import psycopg
    from django.conf import settings
    from django.db import connections

    name = urlsplit(url).path.lstrip("/")
    admin_url = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    connections.close_all()
    settings.DATABASES["default"]["NAME"] = name
    reusing = bool(reuse and exists and _has_customers(customers))
    if not reusing:
        connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
    say(f"{'reusing' if reusing else 'created'} {name}, migrating")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        cwd=ROOT,
        check=True,
        env={**os.environ, "DATABASE_URL": url},
    )
    if reusing:
        say("removing the campaigns of an earlier run")
        for table in ("conversion", "linkclick", "delivery", "channelsend"):
            execute(f"TRUNCATE campaigns_{table}")
        execute("DELETE FROM campaigns_variant")
        execute("DELETE FROM campaigns_campaign_include_segments")
        execute("DELETE FROM campaigns_campaign")
        execute("DELETE FROM crm_orderitem")
        execute("DELETE FROM crm_order")
    else:
        generate(customers)
    say("VACUUM ANALYZE")
    execute("VACUUM ANALYZE")
    return int(fetch_one("SELECT id FROM segments_segment WHERE name = 'bench_everyone'")[0])


def _has_customers(customers: int) -> bool:
    if fetch_one("SELECT to_regclass('segments_segment') IS NULL")[0]:
        return False
    found = fetch_one(
        "SELECT count(*) FROM segments_segmentmembership m"
        " JOIN segments_segment s ON s.id = m.segment_id WHERE s.name = 'bench_everyone'"
    )[0]
    return bool(found == customers)


def generate(customers: int) -> None:
    say(f"generating {customers:,} customers")
    started = time.perf_counter()
    execute(
        "INSERT INTO crm_staffmember (wecom_userid, name, is_active, created_at)"
        " SELECT 'staff' || n, '导购' || n, true, now() FROM generate_series(1, %s) n",
        [STAFF],
    )
    execute(
        """
        INSERT INTO crm_customer (display_name, gender, province, city, source_channel,
            first_seen_at, owner_id, member_level, member_points, created_at, updated_at)
        SELECT '顾客' || n, 'unknown', '', '', 'wecom', now(),
               (SELECT min(id) FROM crm_staffmember) + n %% %s, 0, 0, now(), now()
        FROM generate_series(1, %s) n
        """,
        [STAFF, customers],
    )
    execute(
        """
        INSERT INTO crm_identity (customer_id, provider, namespace, value_hash, value_encrypted,
                                  value_masked, is_sensitive, created_at)
        SELECT id, 'wecom', %s, md5(id::text), 'bench', 'wm****', false, now()
        FROM crm_customer
        """,
        [CORP_ID],
    )
    execute(
        """
        INSERT INTO crm_consent (customer_id, channel, status, source, changed_at)
        SELECT id, 'wecom', 'opted_out', 'bench', now() FROM crm_customer WHERE id %% 100 = 0
        """,
        [],
    )
    execute(
        "INSERT INTO segments_segment (name, description, kind, rule_version, member_count,"
        " refresh_error, created_by, created_at, updated_at, pinned)"
        " VALUES ('bench_everyone', '', 'static', 1, %s, '', 'bench', now(), now(), false)",
        [customers],
    )
    execute(
        """
        INSERT INTO segments_segmentmembership (segment_id, customer_id, rule_version, entered_at)
        SELECT s.id, c.id, 1, now() FROM crm_customer c, segments_segment s
        WHERE s.name = 'bench_everyone'
        """
    )
    say(f"generated in {time.perf_counter() - started:.0f} s")


def stage_floor_write(segment_id: int, *, indexed: bool = False) -> float:
    """The bare insert of the audience's rows; `indexed`: into a copy with the ledger's
    indexes, as reserved rows with their calls (what a reserved delivery costs at the least)."""
    copied = "INCLUDING ALL" if indexed else "INCLUDING DEFAULTS INCLUDING IDENTITY"
    best = float("inf")
    for _ in range(FLOOR_RUNS):
        execute("DROP TABLE IF EXISTS bench_floor_delivery")
        execute(f"CREATE TABLE bench_floor_delivery (LIKE campaigns_delivery {copied})")
        started = time.perf_counter()
        execute(
            """
            INSERT INTO bench_floor_delivery (customer_id, campaign_id, step, is_holdout, status,
                reason, due_at, first_due_at, reserved_at, planned_at, attempts, error,
                channel_send_id)
            SELECT customer_id, 1, 0, false, 'reserved', '', now(), now(), now(), now(), 0, '',
                   customer_id / 400
            FROM segments_segmentmembership WHERE segment_id = %s
            """,
            [segment_id],
        )
        best = min(best, time.perf_counter() - started)
    execute("DROP TABLE bench_floor_delivery")
    return best


def make_campaigns(segment_id: int) -> list[int]:
    from decimal import Decimal

    from campaigns.services.campaigns import CampaignInput, VariantInput, campaign_create

    ids = []
    for name in ("bench_a", "bench_b"):
        campaign = campaign_create(
            data=CampaignInput(
                name=name,
                channel="wecom_customer",
                variants=[VariantInput(name="A", content=f"{name} 新品上市")],
                include_segment_ids=[segment_id],
                holdout_share=Decimal("0"),
                quiet_hours_start=None,
                quiet_hours_end=None,
            ),
            actor="bench",
        )
        ids.append(campaign.pk)
    return ids


def stage_plan_reserve(campaign_ids: list[int], tasks: list[list[int]]) -> float:
    """Launch both, then plan and reserve each to the end on its own thread."""
    from celery.app.task import Task
    from django.db import connection

    from campaigns.services import reservation
    from campaigns.services.campaigns import campaign_launch, campaign_plan
    from core import enqueue

    for campaign_id in campaign_ids:
        campaign_launch(campaign_id=campaign_id, actor="bench", at=LAUNCH)
    # Dispatch is the next stage: record each dispatch task instead of publishing it.
    original = enqueue.publish

    def record(task: Task, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if task.name == "campaigns.run_channel_sends":
            tasks.append(args[0])
        else:
            original(task, args, kwargs)

    enqueue.publish = record
    barrier = threading.Barrier(len(campaign_ids))
    errors: list[BaseException] = []

    def work(campaign_id: int) -> None:
        try:
            barrier.wait()
            campaign_plan(campaign_id=campaign_id, at=LAUNCH)
            while not reservation.deliveries_reserve_batch(
                campaign_id=campaign_id, at=LAUNCH
            ).is_exhausted:
                pass
        except BaseException as error:  # reported after the join
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(pk,)) for pk in campaign_ids]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    enqueue.publish = original
    if errors:
        raise errors[0]
    return seconds


def violations() -> int:
    """Customers with more counted sends in the business day than the platform preset allows."""
    return int(
        fetch_one(
            """
            SELECT count(*) FROM (
                SELECT customer_id FROM campaigns_delivery
                WHERE status IN ('reserved', 'submitted', 'sent')
                GROUP BY customer_id HAVING count(*) > 1
            ) over_cap
            """
        )[0]
    )


def stage_dispatch_enqueue(tasks: list[list[int]]) -> float:
    """Publish every dispatch task the reservations queued (to a queue nobody consumes)."""
    from campaigns.tasks import channel_sends_run_task

    started = time.perf_counter()
    for channel_send_ids in tasks:
        channel_sends_run_task.apply_async(args=[channel_send_ids], queue="bench-not-consumed")
    seconds = time.perf_counter() - started
    from config.celery import app

    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge("bench-not-consumed")
    return seconds


def stage_first_attempts(tasks: list[list[int]]) -> tuple[float, int]:
    """Begin each call's first attempt, as the worker running it would before calling WeCom;
    answers the seconds and the deliveries to send."""
    from campaigns.services.dispatch import attempt_begin

    deliveries = 0
    started = time.perf_counter()
    for channel_send_ids in tasks:
        for channel_send_id in channel_send_ids:
            attempt = attempt_begin(channel_send_id=channel_send_id, now=LAUNCH)
            assert attempt is not None
            deliveries += len(attempt.deliveries)
    return time.perf_counter() - started, deliveries


def prepare_orders(orders: int) -> None:
    """Every reserved delivery is taken as sent at launch; then ORDERS customers pay an order
    within the week after it (not timed)."""
    execute(
        "UPDATE campaigns_delivery SET status = 'sent', sent_at = reserved_at"
        " WHERE status = 'reserved'"
    )
    execute(
        """
        INSERT INTO crm_order (customer_id, source, external_id, status, total_amount,
            refunded_amount, currency, paid_at, channel, store, content_hash, created_at,
            updated_at)
        SELECT customer_id, 'bench', 'B' || customer_id, 'paid', 100 + customer_id %% 50, 0,
               'CNY', %s + make_interval(hours => (customer_id %% 150)::int), '', '', '',
               now(), now()
        FROM (SELECT customer_id FROM campaigns_delivery WHERE status = 'sent'
              ORDER BY md5(customer_id::text) LIMIT %s) chosen
        """,
        [LAUNCH, orders],
    )
    execute("VACUUM ANALYZE crm_order")
    execute("VACUUM ANALYZE campaigns_delivery")


def order_customers() -> list[int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT customer_id FROM crm_order WHERE source = 'bench'")
        return [row[0] for row in cursor.fetchall()]


def stage_floor_join() -> float:
    best = float("inf")
    for _ in range(FLOOR_RUNS):
        started = time.perf_counter()
        fetch_one(
            """
            SELECT count(*), sum(o.total_amount) FROM crm_order o
            JOIN campaigns_delivery d ON d.customer_id = o.customer_id
            WHERE o.source = 'bench' AND d.status = 'sent'
              AND o.paid_at >= d.sent_at AND o.paid_at < d.sent_at + interval '7 days'
            """
        )
        best = min(best, time.perf_counter() - started)
    return best


def stage_attribute(customer_ids: list[int]) -> tuple[float, int]:
    from campaigns.services.attribution import conversions_attribute

    started = time.perf_counter()
    _removed, written = conversions_attribute(customer_ids=customer_ids)
    return time.perf_counter() - started, written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    args = parser.parse_args()
    parts = urlsplit(args.database_url)
    base = parts.path.lstrip("/") or "crm_bench"
    url = urlunsplit(parts._replace(path=f"/{base}_cmp_{args.customers}"))
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings

    settings.WECOM_CORP_ID = CORP_ID

    segment_id = prepare(url, args.customers, reuse=args.reuse)
    results: dict[str, Any] = {"customers": args.customers, "orders": args.orders}
    say("stage floor_write")
    floor_write = stage_floor_write(segment_id)
    say("stage floor_write_indexed")
    floor_indexed = stage_floor_write(segment_id, indexed=True)
    campaign_ids = make_campaigns(segment_id)
    tasks: list[list[int]] = []
    say("stage plan_reserve (two campaigns at once)")
    plan_reserve = stage_plan_reserve(campaign_ids, tasks)
    reserved = int(
        fetch_one("SELECT count(*) FROM campaigns_delivery WHERE status = %s", ["reserved"])[0]
    )
    over_cap = violations()
    say("stage dispatch_enqueue")
    enqueue = stage_dispatch_enqueue(tasks)
    say("stage first_attempts")
    first_attempts, to_send = stage_first_attempts(tasks)
    prepare_orders(args.orders)
    say("stage floor_join")
    floor_join = stage_floor_join()
    say("stage attribute")
    attribute, conversions = stage_attribute(order_customers())
    stages = [
        ("floor_write", floor_write, None, {}),
        ("floor_write_indexed", floor_indexed, None, {}),
        (
            "plan_reserve",
            plan_reserve,
            floor_write,
            {"reserved": reserved, "violations": over_cap, "campaigns": len(campaign_ids)},
        ),
        (
            "dispatch_enqueue",
            enqueue,
            floor_write,
            {"tasks": len(tasks), "channel_sends": sum(len(ids) for ids in tasks)},
        ),
        ("first_attempts", first_attempts, floor_write, {"deliveries": to_send}),
        ("floor_join", floor_join, None, {}),
        ("attribute", attribute, floor_join, {"conversions_written": conversions}),
    ]
    results["stages"] = [
        {
            "stage": name,
            "seconds": round(seconds, 3),
            "ratio_to_floor": round(seconds / floor, 2) if floor else None,
            "target_seconds": TARGETS.get(name),
            "met": seconds <= TARGETS[name] if name in TARGETS else None,
            **details,
        }
        for name, seconds, floor, details in stages
    ]
    print(f"{args.customers:,} customers, {args.orders:,} new orders")
    print(f"{'stage':<20}{'seconds':>9}{'x floor':>9}{'target':>9}  details")
    for row in results["stages"]:
        ratio = f"{row['ratio_to_floor']:.2f}" if row["ratio_to_floor"] else "-"
        target = f"{row['target_seconds']:.0f}" if row["target_seconds"] else "-"
        extra = {
            k: v
            for k, v in row.items()
            if k not in {"stage", "seconds", "ratio_to_floor", "target_seconds"}
        }
        print(f"{row['stage']:<20}{row['seconds']:>9.3f}{ratio:>9}{target:>9}  {extra}")
    out = ROOT / "bench" / "results" / "campaign_pipeline.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    if over_cap:
        raise SystemExit(f"{over_cap} customers over the cap")


if __name__ == "__main__":
    main()
