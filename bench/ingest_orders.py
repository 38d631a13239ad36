"""Order ingestion over real HTTP, against the bare COPY floor into the same tables.

    python bench/ingest_orders.py [--orders 1000000] [--batch 1000] [--customers 100000]
                                  [--web-workers 2] [--clients 4] [--database-url URL]

Starts gunicorn on a scratch database (created and migrated here; default
`postgres://postgres@127.0.0.1:5432/crm_bench`, or the embedded server when unset and no
`--database-url`), pre-serialises every request body (so the client spends little CPU during
the timed part), sends the batches from `--clients` keep-alive connections and reports orders/s.
Then it times the floor: COPY of the same orders and items into crm_order / crm_orderitem, rolled
back. Results go to stdout and bench/results/ingest_orders.json.
"""

import argparse
import http.client
import json
import os
import queue
import random
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build_orders(total: int, customers: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    categories = ["护肤", "彩妆", "个护", "香氛"]
    orders = []
    for n in range(total):
        customer = int(customers * rng.random() ** 2)  # skewed: a loyal head orders more
        items = []
        total_amount = 0
        for line in range(rng.choice((1, 1, 2, 3))):
            quantity = rng.randint(1, 3)
            unit_price = rng.choice((39, 59, 99, 129, 199, 299))
            total_amount += quantity * unit_price
            items.append(
                {
                    "sku": f"SKU{rng.randint(1, 500):04d}",
                    "name": f"商品{line}",
                    "category": rng.choice(categories),
                    "quantity": quantity,
                    "unit_price": f"{unit_price}.00",
                }
            )
        refunded = rng.random() < 0.08
        orders.append(
            {
                "source": "bench_shop",
                "external_id": f"B{n:09d}",
                "customer": {
                    "identities": [
                        {
                            "provider": "external",
                            "namespace": "bench_shop",
                            "value": f"c{customer:08d}",
                        }
                    ]
                },
                "status": "refunded" if refunded else "paid",
                "total_amount": f"{total_amount}.00",
                "refunded_amount": f"{total_amount}.00" if refunded else "0.00",
                "currency": "CNY",
                "paid_at": (start + timedelta(seconds=rng.randint(0, 365 * 86400))).isoformat(),
                "channel": rng.choice(("miniprogram", "douyin", "offline_store")),
                "items": items,
            }
        )
    return orders


def wait_healthy(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("web server did not become healthy")


def cpu_seconds(markers: tuple[str, ...]) -> dict[str, float]:
    """CPU time (user + system) used so far by the processes whose command line contains each
    marker: the web workers and the database backends serving this run. Unlike wall time, it
    does not depend on whatever else the machine is doing."""
    tick = os.sysconf("SC_CLK_TCK")
    used = dict.fromkeys(markers, 0.0)
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        for marker in markers:
            if marker in command:
                used[marker] += (int(fields[11]) + int(fields[12])) / tick
    return used


def send_all(port: int, key: str, bodies: list[bytes], clients: int) -> tuple[float, dict]:
    work: queue.Queue[bytes] = queue.Queue()
    for body in bodies:
        work.put(body)
    totals = {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0, "errors": 0}
    lock = threading.Lock()
    headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            try:
                body = work.get_nowait()
            except queue.Empty:
                return
            conn.request("POST", "/api/v1/orders/bulk", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            with lock:
                if response.status != 200:
                    totals["errors"] += 1
                    print(f"HTTP {response.status}: {payload[:300]!r}", file=sys.stderr)
                    continue
                result = msgspec.json.decode(payload)
                for name in ("created", "updated", "unchanged"):
                    totals[name] += result[name]
                totals["rejected"] += len(result["rejected"])

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, totals


def copy_floor(orders: list[dict]) -> float:
    """Bare COPY of the same orders and items into the same tables, then rolled back."""
    import django
    from django.db import connection, transaction

    django.setup()
    with transaction.atomic():
        connection.ensure_connection()
        raw = connection.connection
        with raw.cursor() as cursor:
            cursor.execute("SELECT coalesce(min(id), 1) FROM crm_customer")
            customer_id = cursor.fetchone()[0]
            cursor.execute("SELECT coalesce(max(id), 0) FROM crm_order")
            base_id = cursor.fetchone()[0] + 1
            now = datetime.now(UTC)
            started = time.perf_counter()
            with cursor.copy(
                "COPY crm_order (id, customer_id, source, external_id, status, total_amount,"
                " refunded_amount, currency, paid_at, channel, store, content_hash, created_at,"
                " updated_at) FROM STDIN"
            ) as copy:
                for offset, order in enumerate(orders):
                    copy.write_row(
                        (
                            base_id + offset,
                            customer_id,
                            "floor",
                            order["external_id"],
                            order["status"],
                            order["total_amount"],
                            order["refunded_amount"],
                            "CNY",
                            order["paid_at"],
                            order["channel"],
                            "",
                            "0" * 32,
                            now,
                            now,
                        )
                    )
            with cursor.copy(
                "COPY crm_orderitem (order_id, customer_id, line_no, sku, name, category,"
                " quantity, unit_price, purchased_at) FROM STDIN"
            ) as copy:
                for offset, order in enumerate(orders):
                    for line, item in enumerate(order["items"], start=1):
                        copy.write_row(
                            (
                                base_id + offset,
                                customer_id,
                                line,
                                item["sku"],
                                item["name"],
                                item["category"],
                                item["quantity"],
                                item["unit_price"],
                                order["paid_at"] if order["status"] == "paid" else None,
                            )
                        )
            elapsed = time.perf_counter() - started
        transaction.set_rollback(True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=100_000)
    # Two web workers leave the second core to PostgreSQL; three or four measured slower here.
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--port", type=int, default=18900)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/crm_bench"
        ),
    )
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DJANGO_DEBUG"] = "0"
    # One database backend per web worker for the whole run, so that the CPU they use is
    # all counted (a backend closed midway would take its CPU time with it).
    os.environ["DATABASE_CONN_MAX_AGE"] = "86400"
    db_name = args.database_url.rsplit("/", 1)[1].split("?")[0]
    admin_url = args.database_url.rsplit("/", 1)[0] + "/postgres"
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db_name}"')
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True)
    key = (
        subprocess.run(
            [python, "manage.py", "create_api_key", "--name", "bench", "--scopes", "orders"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )

    print(f"building {args.orders:,} orders over {args.customers:,} customers", file=sys.stderr)
    orders = build_orders(args.orders, args.customers, args.seed)
    bodies = [
        msgspec.json.encode({"orders": orders[i : i + args.batch]})
        for i in range(0, len(orders), args.batch)
    ]
    item_count = sum(len(o["items"]) for o in orders)

    web = subprocess.Popen(
        [
            python,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{args.port}",
            "--workers",
            str(args.web_workers),
            "--timeout",
            "300",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    try:
        wait_healthy(args.port)
        # The web workers, and the PostgreSQL backends ("postgres: ... <db> 127.0.0.1(...)").
        markers = (f"--bind 127.0.0.1:{args.port}", f" {db_name} 127.0.0.1(")
        print("first ingestion...", file=sys.stderr)
        cpu_before = cpu_seconds(markers)
        first_seconds, first = send_all(args.port, key, bodies, args.clients)
        cpu_first = cpu_seconds(markers)
        print("re-sending the same batches...", file=sys.stderr)
        again_seconds, again = send_all(args.port, key, bodies, args.clients)
        cpu_again = cpu_seconds(markers)
    finally:
        web.terminate()
        web.wait(timeout=30)
    floor_seconds = copy_floor(orders)

    def cpu_ms_per_1000(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        web, database = (after[m] - before[m] for m in markers)
        return {
            "web": round(web * 1e6 / args.orders, 1),
            "database": round(database * 1e6 / args.orders, 1),
        }

    result = {
        "orders": args.orders,
        "items": item_count,
        "batch": args.batch,
        "customers": args.customers,
        "web_workers": args.web_workers,
        "clients": args.clients,
        "first_ingest": {
            "seconds": round(first_seconds, 2),
            "orders_per_second": round(args.orders / first_seconds),
            "cpu_ms_per_1000_orders": cpu_ms_per_1000(cpu_before, cpu_first),
            **first,
        },
        "resend_unchanged": {
            "seconds": round(again_seconds, 2),
            "orders_per_second": round(args.orders / again_seconds),
            "cpu_ms_per_1000_orders": cpu_ms_per_1000(cpu_first, cpu_again),
            **again,
        },
        "copy_floor": {
            "seconds": round(floor_seconds, 2),
            "orders_per_second": round(args.orders / floor_seconds),
        },
        "ratio_first_ingest_to_floor": round(first_seconds / floor_seconds, 2),
    }
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "ingest_orders.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
