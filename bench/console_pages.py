"""The operator console at scale: the admin's pages and a campaign's dry run, each against a
bare-SQL floor measured in the same run.

    python bench/console_pages.py [--customers 1000000] [--orders 10000000] [--deliveries 5000000]
                            [--reuse] [--database-url URL] [--url PATH ...] [--overview-only]

A scratch database `<name>_console_<customers>` on the server of `--database-url` (default
BENCH_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/crm_bench) is dropped, created and
migrated unless `--reuse` finds it complete. Data: `devstack.demo.generate` (customers with
identities, consents, tags, group chats and memberships, `--orders` orders in all, history up to
AS_OF), the scores of `recompute_full`, a dynamic segment and a static one of DRY_RUN_AUDIENCE
customers, LEDGER_CAMPAIGNS finished campaigns and `--deliveries` deliveries spread over the
month before AS_OF (written by one set-based INSERT), then VACUUM ANALYZE.

Timed, each the best of RUNS, with Django's test client logged in as a superuser:

- floor: the bare SQL of one list page (the newest 100 orders with their customers' names);
- the admin's index (the overview), every registered model's change list (unfiltered, with
  the first choice of each of its filters, found in the unfiltered page, and with a search when
  it offers one, the term taken from a row), a customer's page, the segment portrait if the
  admin has one (any URL named `*portrait*`), and the paths given with `--url`;
- the overview's panels uncached, as of OVERVIEW_NOW (the evening of AS_OF, where the data's
  history ends): each selector of console.selectors called directly for each period, the
  retention pre-aggregate's nightly computation and its read; the whole index for each period
  with the cache cleared before every request (the first visit) and warm; the portrait of the
  largest segment with its base dropped from the cache and warm (`--overview-only`: these
  and not the other pages);
- the dry run of a campaign on the static segment, once before the ledger is written and once
  after, next to its own floor (the bare count of the audience's deliveries in the caps'
  window): it must grow with the audience, not with the ledger.

Prints one line per page: seconds, ratio to the floor, queries, and whether it is within its
target (1 s a page, 2 s the portrait). Results go to stdout and bench/results/console.json;
progress to stderr.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import partial
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
# The project root first: imports resolve to the apps, not to files next to this script.
sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crm_bench"
AS_OF = date(2026, 11, 23)
# Noon of the business day after AS_OF: outside quiet hours, the caps' windows over the ledger.
LAUNCH = datetime(2026, 11, 24, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
SEED = 7
RUNS = 3
PAGE_TARGET = 1.0
PORTRAIT_TARGET = 2.0
DRY_RUN_AUDIENCE = 340  # the audience of the tryout
LEDGER_CAMPAIGNS = 50
LEDGER_DAYS = 30
BENCH_MARK = "bench_console"

FLOOR_SQL = """
    SELECT o.id, o.external_id, o.status, o.total_amount, o.paid_at, c.display_name
    FROM crm_order o JOIN crm_customer c ON c.id = o.customer_id
    ORDER BY o.id DESC LIMIT 100
"""


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


def best_of(call: Callable[[], Any], runs: int = RUNS) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


# --- data -----------------------------------------------------------------------------------


def prepare(url: str, customers: int, orders: int, *, reuse: bool) -> bool:
    """The scratch database, migrated and filled unless `reuse` finds it complete (or its
    customers and orders complete: then what is derived from them is written); answers
    whether its ledger was in place already."""
    import psycopg
    from django.conf import settings
    from django.db import connections

    name = urlsplit(url).path.lstrip("/")
    admin_url = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    connections.close_all()
    settings.DATABASES["default"]["NAME"] = name
    has_customers = bool(reuse and exists and _has_customers(customers))
    if not has_customers:
        connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
    say(f"{'reusing' if has_customers else 'created'} {name}, migrating")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        cwd=ROOT,
        check=True,
        env={**os.environ, "DATABASE_URL": url},
    )
    if not has_customers:
        generate(customers, orders)
    has_ledger = has_customers and _has_ledger()
    if not has_ledger:
        derive()
    say("VACUUM ANALYZE")
    execute("VACUUM ANALYZE")
    return has_ledger


def _has_customers(customers: int) -> bool:
    if fetch_one("SELECT to_regclass('crm_customer') IS NULL")[0]:
        return False
    return bool(fetch_one("SELECT count(*) FROM crm_customer")[0] == customers)


def _has_ledger() -> bool:
    """Whether the campaigns are written (the last thing `derive` writes before the ledger)."""
    return bool(
        fetch_one("SELECT count(*) FROM campaigns_campaign WHERE created_by = %s", [BENCH_MARK])[0]
        > LEDGER_CAMPAIGNS
    )


def generate(customers: int, orders: int) -> None:
    from devstack.demo import generate as demo_generate

    say(f"generating {customers:,} customers and about {orders:,} orders")
    started = time.perf_counter()
    demo_generate(
        customers=customers, seed=SEED, orders_per_customer=orders / customers, as_of=AS_OF
    )
    say(f"generated in {time.perf_counter() - started:.0f} s")


def derive() -> None:
    """What the customers and orders lead to: scores, segments, campaigns (not the ledger)."""
    from segments.models import Segment
    from segments.services.recompute import recompute_full
    from segments.services.segments import segment_create, segment_refresh

    say("VACUUM ANALYZE, scores")
    execute("VACUUM ANALYZE")
    started = time.perf_counter()
    recompute_full(trigger="bench", as_of=AS_OF)
    say(f"scores in {time.perf_counter() - started:.0f} s; segments")
    dynamic = segment_create(
        name="沉睡的重要价值客户",
        kind="dynamic",
        rule={
            "all": [
                {"field": "lifecycle_state", "op": "eq", "value": "sleeping"},
                {
                    "field": "rfm_tier",
                    "op": "in",
                    "value": ["important_value", "important_retain"],
                },
            ]
        },
        actor=BENCH_MARK,
    )
    segment_refresh(segment_id=dynamic.pk)
    static = _dry_run_segment()
    # Drawn by the overview's pinned segments panel.
    Segment.objects.filter(pk__in=[dynamic.pk, static]).update(pinned=True)
    say("ledger campaigns")
    make_ledger_campaigns()


def _dry_run_segment() -> int:
    """The static segment the dry run targets: DRY_RUN_AUDIENCE customers with a WeCom
    identity, spread over the id range."""
    from crm.models import Customer
    from segments.services.segments import segment_create, segment_members_change

    segment = segment_create(name="试运行人群", kind="static", actor=BENCH_MARK)
    reachable = Customer.objects.filter(identities__provider="wecom").values_list("pk", flat=True)
    total = reachable.count()
    step = max(total // DRY_RUN_AUDIENCE, 1)
    ids = list(reachable.order_by("pk")[: step * DRY_RUN_AUDIENCE : step])
    segment_members_change(segment_id=segment.pk, add=ids, actor=BENCH_MARK)
    return segment.pk


def make_ledger_campaigns() -> list[int]:
    """LEDGER_CAMPAIGNS finished campaigns (whose deliveries the ledger holds), and the draft
    whose dry run is timed (the last one)."""
    from decimal import Decimal

    from campaigns.services.campaigns import CampaignInput, VariantInput, campaign_create
    from segments.models import Segment

    segment_id = Segment.objects.get(name="试运行人群").pk
    ids = []
    for number in range(LEDGER_CAMPAIGNS + 1):
        campaign = campaign_create(
            data=CampaignInput(
                name=f"大促预热 第{number + 1}波",
                channel="wecom_customer",
                variants=[VariantInput(name="A", content="新品上市，专属优惠等你来")],
                include_segment_ids=[segment_id],
                holdout_share=Decimal("0.1"),
            ),
            actor=BENCH_MARK,
        )
        ids.append(campaign.pk)
    execute(
        "UPDATE campaigns_campaign SET state = 'completed', launched_at = %s, finished_at = %s"
        " WHERE id = ANY(%s)",
        [LAUNCH - timedelta(days=LEDGER_DAYS), LAUNCH - timedelta(days=1), ids[:-1]],
    )
    return ids


def write_ledger(deliveries: int) -> float:
    """`deliveries` sent deliveries of the finished campaigns, to customers spread over all of
    them (a customer at most once a campaign), reserved over the LEDGER_DAYS before LAUNCH.
    Answers the seconds it took."""
    started = time.perf_counter()
    first, customers = fetch_one("SELECT min(id), count(*) FROM crm_customer")
    campaigns = [
        row[0]
        for row in _fetch_all(
            "SELECT id FROM campaigns_campaign WHERE created_by = %s AND state = 'completed'"
            " ORDER BY id",
            [BENCH_MARK],
        )
    ]
    per_campaign = min(deliveries // len(campaigns), customers)
    # 7919 is prime and does not divide the customer count: n -> n * 7919 mod customers is
    # one-to-one, so no customer gets two deliveries of one campaign.
    execute(
        """
        INSERT INTO campaigns_delivery (customer_id, campaign_id, step, is_holdout, status,
            reason, due_at, first_due_at, reserved_at, planned_at, sent_at, attempts, error)
        SELECT %(first)s + (n * 7919 + k * 104729) %% %(customers)s, c.id, 0, false, 'sent', '',
               t, t, t, t, t, 1, ''
        FROM unnest(%(campaigns)s::bigint[]) WITH ORDINALITY AS c(id, k),
             generate_series(0, %(per)s - 1) AS n,
             LATERAL (SELECT %(launch)s::timestamptz
                      - make_interval(secs => ((n * 31 + k * 7) %% (%(days)s * 86400))::float)
                      AS t) AS at
        """,
        {
            "first": first,
            "customers": customers,
            "campaigns": campaigns,
            "per": per_campaign,
            "launch": LAUNCH,
            "days": LEDGER_DAYS,
        },
    )
    execute("VACUUM ANALYZE campaigns_delivery")
    return time.perf_counter() - started


def _fetch_all(sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]


# --- the dry run ----------------------------------------------------------------------------


def dry_run_campaign() -> Any:
    from campaigns.models import Campaign

    return Campaign.objects.filter(created_by=BENCH_MARK, state="draft").get()


def time_dry_run() -> dict[str, Any]:
    from campaigns.models import COUNTED_STATUSES
    from campaigns.services.dry_run import campaign_dry_run
    from segments.models import SegmentMembership

    campaign = dry_run_campaign()
    audience = list(
        SegmentMembership.objects.filter(segment__name="试运行人群").values_list(
            "customer_id", flat=True
        )
    )
    result = campaign_dry_run(campaign=campaign, at=LAUNCH)
    seconds = best_of(lambda: campaign_dry_run(campaign=campaign, at=LAUNCH))
    floor = best_of(
        lambda: fetch_one(
            "SELECT count(*) FROM campaigns_delivery WHERE customer_id = ANY(%s)"
            " AND status = ANY(%s) AND reserved_at >= %s",
            [audience, list(COUNTED_STATUSES), LAUNCH - timedelta(days=LEDGER_DAYS)],
        )
    )
    ledger = fetch_one(
        "SELECT reltuples::bigint FROM pg_class WHERE relname = %s", ["campaigns_delivery"]
    )[0]
    return {
        "ledger": max(int(ledger), 0),
        "audience": result.audience,
        "capped": sum(result.capped_by_rule.values()),
        "would_send": result.would_send,
        "seconds": round(seconds, 3),
        "floor_seconds": round(floor, 4),
    }


# --- the pages ------------------------------------------------------------------------------


FILTER_BLOCK = re.compile(r'<details data-filter-title="([^"]*)"(.*?)</details>', re.S)
FILTER_LINK = re.compile(r'<a href="(\?[^"]*)"')


def filter_queries(html: str) -> list[tuple[str, str]]:
    """(title, query string) of the first choice of each filter of a change list page that is
    not "all" (the first link)."""
    found = []
    for title, block in FILTER_BLOCK.findall(html):
        links = [unescape(link) for link in FILTER_LINK.findall(block)]
        chosen = [link for link in links[1:] if link != "?"]
        if chosen:
            found.append((unescape(title), chosen[0]))
    return found


def search_term(model_admin: Any) -> str | None:
    """A term an operator would type in the search box of this list: a value of the first
    search field from the newest row, whole for an exact field or a short one (a name), else
    four characters of it."""
    numbers = getattr(model_admin, "number_search_fields", ())
    fields = list(numbers or model_admin.search_fields or [])
    if not fields:
        return None
    field = fields[0]
    is_exact = field.startswith("=") or field.endswith("__exact") or field.endswith("_id")
    field = field.lstrip("=^@").removesuffix("__exact")
    value = (
        model_admin.model._default_manager.order_by("-pk")
        .exclude(**{f"{field}__isnull": True})
        .values_list(field, flat=True)
        .first()
    )
    if value in (None, ""):
        return None
    text = str(value)
    return text if is_exact or len(text) <= 4 else text[1:5]


def pages() -> list[tuple[str, str, float]]:
    """(label, path, target) of every page to time."""
    from django.contrib import admin
    from django.urls import NoReverseMatch, reverse

    from crm.models import Customer
    from segments.models import Segment

    found = [("index (overview)", reverse("admin:index"), PAGE_TARGET)]
    for model, model_admin in sorted(
        admin.site._registry.items(), key=lambda item: item[0]._meta.label
    ):
        opts = model._meta
        label = f"{opts.app_label}.{opts.model_name}"
        path = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        found.append((label, path, PAGE_TARGET))
        term = search_term(model_admin)
        if term is not None:
            found.append((f"{label} search {term!r}", f"{path}?q={quote(term)}", PAGE_TARGET))
    customer = Customer.objects.order_by("-pk").values_list("pk", flat=True).first()
    found.append(
        ("customer page", reverse("admin:crm_customer_change", args=[customer]), PAGE_TARGET)
    )
    segment = Segment.objects.order_by("-member_count").values_list("pk", flat=True).first()
    for name in _url_names(admin.site.get_urls()):
        if "portrait" in name:
            try:
                path = reverse(f"admin:{name}", args=[segment])
            except NoReverseMatch:
                continue
            found.append((f"portrait ({name})", path, PORTRAIT_TARGET))
    return found


def _url_names(patterns: list[Any]) -> list[str]:
    names = []
    for pattern in patterns:
        if hasattr(pattern, "url_patterns"):
            names.extend(_url_names(pattern.url_patterns))
        elif pattern.name:
            names.append(pattern.name)
    return names


def time_page(client: Any, label: str, path: str, target: float) -> dict[str, Any]:
    from django.db import connection

    queries = 0

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        response = client.get(path)
    status = response.status_code
    seconds = best_of(lambda: client.get(path))
    return {
        "page": label,
        "path": path,
        "status": status,
        "seconds": round(seconds, 3),
        "queries": queries,
        "target": target,
        "html": response.content.decode() if status == 200 else "",
    }


def logged_in_client() -> Any:
    """Django's test client logged in as a superuser."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(
        username="bench_console", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    return client


def time_pages(client: Any, extra: list[str]) -> list[dict[str, Any]]:
    from django.contrib.admin.sites import site

    results = []
    listed = [*pages(), *((path, path, PAGE_TARGET) for path in extra)]
    changelists = {f"{model._meta.app_label}.{model._meta.model_name}" for model in site._registry}
    for label, path, target in listed:
        say(f"page {label}")
        result = time_page(client, label, path, target)
        html = result.pop("html")
        results.append(result)
        if label in changelists:
            for title, query in filter_queries(html):
                say(f"page {label} filtered by {title}")
                filtered = time_page(client, f"{label} {title}: {query}", path + query, target)
                filtered.pop("html")
                results.append(filtered)
    return results


# --- the overview's panels, uncached -------------------------------------------------------

# The overview reads its periods up to "now"; the bench data's history ends on AS_OF, so the
# panels are timed as of that evening in business time, when the periods are full.
OVERVIEW_NOW = datetime(2026, 11, 23, 20, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def _timed(panel: str, days: int | None, seconds: float, target: float | None) -> dict[str, Any]:
    say(f"overview {panel} {days or ''} {seconds:.3f} s")
    return {"panel": panel, "days": days, "seconds": round(seconds, 3), "target": target}


def time_overview_panels() -> list[dict[str, Any]]:
    """Each panel's selector called directly (no cache), as of OVERVIEW_NOW, for every period;
    the retention pre-aggregate's nightly computation (no page waits for it: no target) before
    the panel's read of it."""
    from console import selectors
    from segments.services.retention import retention_recompute

    rows = [
        _timed(
            "retention pre-aggregate (nightly)",
            None,
            best_of(lambda: retention_recompute(now=OVERVIEW_NOW)),
            None,
        )
    ]
    unperiodic: dict[str, Callable[[], Any]] = {
        "lifecycle": selectors.overview_lifecycle,
        "rfm tiers": selectors.overview_rfm_tiers,
        "retention (read)": selectors.overview_retention,
        "frequency rules": selectors.overview_frequency_rules,
    }
    for panel, read in unperiodic.items():
        rows.append(_timed(panel, None, best_of(read), PAGE_TARGET))
    periodic: dict[str, Callable[..., Any]] = {
        "kpis": selectors.overview_kpis,
        "lifecycle flow": selectors.overview_lifecycle_flow,
        "acquisition": selectors.overview_acquisition,
        "pinned segments": selectors.overview_pinned_segments,
        "campaigns": selectors.overview_campaigns,
        "contact pressure": selectors.overview_contact_pressure,
    }
    for days in selectors.PERIOD_DAYS:
        period = selectors.overview_period(days=days, now=OVERVIEW_NOW)
        for panel, read in periodic.items():
            rows.append(
                _timed(
                    panel,
                    days,
                    best_of(partial(read, period=period)),
                    PAGE_TARGET,
                )
            )
    return rows


def time_first_visits(client: Any) -> list[dict[str, Any]]:
    """The admin's index as of OVERVIEW_NOW for every period with the cache cleared before
    each request (the first visit of the day: every panel computed), then warm; the portrait
    of the largest segment with the portrait's base dropped from the cache (the first visit
    in five minutes), then warm. Each the best of RUNS."""
    from unittest import mock

    from django.core.cache import cache
    from django.urls import reverse

    from console import selectors
    from console.overview import overview_refresh
    from segments.models import Segment
    from segments.portrait import BASE_CACHE_KEY

    def first_visit(path: str, forget: Callable[[], Any]) -> tuple[float, int]:
        best, status = float("inf"), 0
        for _ in range(RUNS):
            forget()
            started = time.perf_counter()
            status = client.get(path).status_code
            best = min(best, time.perf_counter() - started)
        return best, status

    rows = []

    def add(panel: str, days: int | None, path: str, target: float, forget: Any) -> None:
        cold, status = first_visit(path, forget)
        rows.append({**_timed(f"{panel}, first visit", days, cold, target), "status": status})
        warm = best_of(lambda: client.get(path))
        rows.append({**_timed(f"{panel}, warm", days, warm, target), "status": status})

    as_of_evening = mock.patch(
        "console.overview.overview_period",
        lambda *, days, now: selectors.overview_period(days=days, now=OVERVIEW_NOW),
    )
    with as_of_evening:
        for days in selectors.PERIOD_DAYS:
            path = f"{reverse('admin:index')}?period={days}"
            add("admin index (whole page)", days, path, PAGE_TARGET, cache.clear)
        # What visitors meet: beat's refresh (console.overview_refresh, every five minutes, in
        # the worker) has computed every panel of every period ahead.
        cache.clear()
        refresh = best_of(lambda: overview_refresh(now=OVERVIEW_NOW), runs=1)
        rows.append(_timed("overview refresh (worker, every 5 minutes)", None, refresh, None))
        for days in selectors.PERIOD_DAYS:
            path = f"{reverse('admin:index')}?period={days}"
            after = best_of(partial(client.get, path))
            rows.append(_timed("admin index after the refresh", days, after, PAGE_TARGET))
    segment = Segment.objects.order_by("-member_count").values_list("pk", flat=True).first()
    path = reverse("admin:segments_segment_portrait", args=[segment])
    add("segment portrait", None, path, PORTRAIT_TARGET, lambda: cache.delete(BASE_CACHE_KEY))
    return rows


def print_overview(rows: list[dict[str, Any]]) -> None:
    print(
        f"\n{'overview panel (uncached, as of ' + str(OVERVIEW_NOW) + ')':<60} {'period':>7}"
        f" {'seconds':>8} {'target':>7}  verdict"
    )
    for row in rows:
        target = row["target"]
        row["ok"] = row.get("status", 200) == 200 and (target is None or row["seconds"] <= target)
        verdict = "background" if target is None else "OK" if row["ok"] else f"over {target:g} s"
        if row.get("status", 200) != 200:
            verdict = f"HTTP {row['status']}"
        period = f"{row['days']} d" if row["days"] else "–"
        print(
            f"{row['panel'][:60]:<60} {period:>7} {row['seconds']:>8.3f}"
            f" {'–' if target is None else f'{target:g} s':>7}  {verdict}"
        )


# --- main -----------------------------------------------------------------------------------


def database_url_for(base_url: str, customers: int) -> str:
    parts = urlsplit(base_url)
    name = parts.path.lstrip("/") or "crm_bench"
    return urlunsplit(parts._replace(path=f"/{name}_console_{customers}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--deliveries", type=int, default=5_000_000)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--url", action="append", default=[], help="another path to time")
    parser.add_argument(
        "--prepare-only", action="store_true", help="write the data and the ledger, time nothing"
    )
    parser.add_argument(
        "--overview-only",
        action="store_true",
        help="time the overview's panels, the index and the portrait, not the other pages",
    )
    args = parser.parse_args()
    url = database_url_for(args.database_url, args.customers)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings

    settings.DEBUG = False  # as served: no query log, no debug pages

    load_before = os.getloadavg()[0]
    reused = prepare(url, args.customers, args.orders, reuse=args.reuse)
    floor = best_of(lambda: fetch_one(FLOOR_SQL))
    dry_runs = []
    if not reused:
        dry_runs.append(time_dry_run())
        say(f"writing a ledger of {args.deliveries:,} deliveries")
        say(f"ledger written in {write_ledger(args.deliveries):.0f} s")
    if args.prepare_only:
        return
    dry_runs.append(time_dry_run())
    client = logged_in_client()
    overview = [*time_overview_panels(), *time_first_visits(client)]
    results = [] if args.overview_only else time_pages(client, args.url)
    load_after = os.getloadavg()[0]

    print(f"\nfloor (one page of orders, bare SQL): {floor:.4f} s")
    print(f"{'page':<70} {'seconds':>8} {'× floor':>9} {'queries':>8}  verdict")
    for row in results:
        over = row["status"] != 200 or row["seconds"] > row["target"]
        verdict = f"HTTP {row['status']}" if row["status"] != 200 else "OK"
        if row["status"] == 200 and over:
            verdict = f"over {row['target']:g} s"
        row["ratio_to_floor"] = round(row["seconds"] / floor, 1)
        row["ok"] = not over
        print(
            f"{row['page'][:70]:<70} {row['seconds']:>8.3f} {row['ratio_to_floor']:>9.1f}"
            f" {row['queries']:>8}  {verdict}"
        )
    print(
        f"\n{'dry run':<30} {'ledger':>12} {'audience':>9} {'capped':>7} {'seconds':>8}"
        f" {'floor':>8}"
    )
    for row in dry_runs:
        print(
            f"{'':<30} {row['ledger']:>12,} {row['audience']:>9,} {row['capped']:>7,}"
            f" {row['seconds']:>8.3f} {row['floor_seconds']:>8.4f}"
        )
    print_overview(overview)
    print(f"\nload average {load_before:.1f} before, {load_after:.1f} after")
    over = [row["page"] for row in results if not row["ok"]]
    print(f"{len(results) - len(over)} of {len(results)} pages within target")
    over = [row for row in overview if not row["ok"]]
    print(f"{len(overview) - len(over)} of {len(overview)} overview timings within target")
    out = ROOT / "bench" / "results" / "console.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "customers": args.customers,
                "orders": fetch_one(
                    "SELECT reltuples::bigint FROM pg_class WHERE relname = 'crm_order'"
                )[0],
                "floor_seconds": round(floor, 4),
                "pages": results,
                "overview_now": OVERVIEW_NOW.isoformat(),
                "overview": overview,
                "dry_runs": dry_runs,
                "load_average": [load_before, load_after],
            },
            ensure_ascii=False,
            indent=2,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
