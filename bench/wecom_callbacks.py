"""WeCom callback throughput over real HTTP: events/s through /wecom/callback with their
processing, against the floor of one INSERT of the same rows in the same run.

    python bench/wecom_callbacks.py [--events 5000] [--clients 4] [--web-workers 2]
                                    [--worker --broker redis://127.0.0.1:6379/15]
                                    [--database-url URL]

Creates `crm_bench_callbacks` on the server of `--database-url` (default BENCH_DATABASE_URL,
else postgres://postgres@127.0.0.1:5432/crm_bench_callbacks; dropped first), migrates it and
starts gunicorn with a callback Token / EncodingAESKey. The events (add_external_contact for
distinct contacts of 30 staff members, as devstack.wecom_callbacks writes them) are encrypted
and signed before the clock starts, as WeCom would, then POSTed from `--clients` keep-alive
connections.

The events are handled (crm.wecom.contacts_sync): each reads the contact from WeCom
(`externalcontact/get`), so the script serves the WeCom fake (devstack.wecom_fake) on loopback
from its own process, its directory holding every contact and relation the events name (70 %
with a unionid), and points the web workers and the Celery worker at it (WECOM_API_BASE_URL,
WECOM_CORP_ID, WECOM_SECRET). Processing an event is then: the row lock, decryption and parse,
one HTTP call to the fake (plus `user/get` once per staff member, the first time), the
customer, identities and relation written, the first touch (acquisition) recorded and the
status written ("applied"). Every event must end "applied": the script exits non-zero
otherwise, after printing the count by status.

By default processing is eager (CELERY_TASK_ALWAYS_EAGER in the web workers): each request
verifies, stores, then runs crm.wecom_event_process before answering, so the rate includes the
processing. With `--worker`, the web workers publish to `--broker` and one Celery worker
(concurrency 2) processes; the clock stops when no event is left pending.

Phases: `first` (every event new), `again` (every event re-delivered: answered "success",
nothing written), `floor` (one INSERT ... SELECT FROM unnest of the same rows, already
encrypted, rolled back) and `fake_get` (the same `externalcontact/get` calls made one after the
other through wechatpy from this process, nothing applied: what the HTTP round trips to the
fake alone cost). Results go to stdout and bench/results/wecom_callbacks.json.
"""

import argparse
import http.client
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from devstack.wecom_directory import Directory

TOKEN = "bench-callback-token"  # noqa: S105 - a scratch server's, not a secret
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
CORP_ID = "bench-corp"
SECRET = "bench-secret"  # noqa: S105 - the fake's, not a secret
STAFF = 30


def external_userid(n: int) -> str:
    return f"wmBench{n:010d}"


def directory_fill(directory: "Directory", events: int, created: int) -> None:
    """Every contact and relation the events name, as WeCom would answer for them."""
    from devstack.wecom_directory import ADD_WAY_CONTACT_WAY, Contact, Follow

    directory.staff = {f"staff{s}": f"员工{s:02d}" for s in range(STAFF)}
    for n in range(events):
        contact_id = external_userid(n)
        directory.contacts[contact_id] = Contact(
            contact_id,
            name=f"客户{n:06d}",
            gender=n % 3,
            unionid=f"oBench{n:022d}" if n % 10 < 7 else "",
        )
        userid = f"staff{n % STAFF}"
        directory.follows[(userid, contact_id)] = Follow(
            userid,
            contact_id,
            createtime=created,
            add_way=ADD_WAY_CONTACT_WAY,
            state=f"video-{n % 50}",
        )


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


def send_all(port: int, requests: list[tuple[str, bytes]], clients: int) -> tuple[float, dict]:
    work: queue.Queue[tuple[str, bytes]] = queue.Queue()
    for request in requests:
        work.put(request)
    answers: dict[str, int] = {}
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            try:
                path, body = work.get_nowait()
            except queue.Empty:
                return
            conn.request("POST", path, body=body, headers={"Content-Type": "text/xml"})
            response = conn.getresponse()
            answer = f"{response.status} {response.read().decode()[:40]}"
            with lock:
                answers[answer] = answers.get(answer, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=18910)
    parser.add_argument("--worker", action="store_true", help="process in a Celery worker")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/15")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/crm_bench_callbacks"
        ),
    )
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ["DATABASE_CONN_MAX_AGE"] = "86400"
    os.environ["WECOM_CORP_ID"] = CORP_ID
    os.environ["WECOM_SECRET"] = SECRET
    os.environ["WECOM_CALLBACK_TOKEN"] = TOKEN
    os.environ["WECOM_CALLBACK_AES_KEY"] = AES_KEY
    # The events are signed before the clock starts: a run of minutes needs the window.
    os.environ["WECOM_CALLBACK_MAX_AGE_SECONDS"] = "3600"
    os.environ["CELERY_BROKER_URL"] = args.broker
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false" if args.worker else "true"
    from devstack.wecom_fake import FakeWeCom, FakeWeComConfig

    created = int(time.time())
    fake = FakeWeCom(FakeWeComConfig(corps={CORP_ID: SECRET}, cap_per_receiver=None))
    directory_fill(fake.directory, args.events, created)
    fake.start()
    os.environ["WECOM_API_BASE_URL"] = fake.api_base_url
    db_name = args.database_url.rsplit("/", 1)[1].split("?")[0]
    admin_url = args.database_url.rsplit("/", 1)[0] + "/postgres"
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db_name}"')
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True)

    import django

    django.setup()
    from django.db import connection, transaction
    from django.utils import timezone

    from crm.models import WeComEvent, WeComEventStatus
    from crm.personal_data import encrypt
    from crm.services.wecom_events import message_hash, subject_hash
    from crm.wecom.client import wecom_client
    from devstack.wecom_callbacks import contact_event_xml, signed_callback

    print(f"signing {args.events:,} events", file=sys.stderr)
    messages = [
        contact_event_xml(
            "add_external_contact",
            user_id=f"staff{n % STAFF}",
            external_userid=external_userid(n),
            state=f"video-{n % 50}",
            welcome_code=f"WELCOME{n}",
            corp_id=CORP_ID,
            create_time=created,
        )
        for n in range(args.events)
    ]
    requests = []
    for message in messages:
        signed = signed_callback(message, token=TOKEN, aes_key=AES_KEY, corp_id=CORP_ID)
        requests.append((signed.url("/wecom/callback"), signed.body))

    env = os.environ.copy()
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
        ],
        cwd=ROOT,
        env=env,
    )
    worker = None
    if args.worker:
        worker = subprocess.Popen(
            [python, "-m", "celery", "-A", "config", "worker", "-c", "2", "-l", "warning"],
            cwd=ROOT,
            env=env,
        )
    try:
        wait_healthy(args.port)
        load_at_start = os.getloadavg()
        print("first delivery...", file=sys.stderr)
        first_seconds, first = send_all(args.port, requests, args.clients)
        pending_wait = 0.0
        if worker is not None:
            waited = time.perf_counter()
            while WeComEvent.objects.filter(status=WeComEventStatus.PENDING).exists():
                time.sleep(0.1)
            pending_wait = time.perf_counter() - waited
        print("re-delivery of the same events...", file=sys.stderr)
        again_seconds, again = send_all(args.port, requests, args.clients)
    finally:
        web.terminate()
        web.wait(timeout=30)
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
    statuses = dict(
        WeComEvent.objects.values_list("status").annotate(n=django.db.models.Count("id"))
    )

    # The floor: the same rows (hashed and encrypted beforehand) in one INSERT, rolled back.
    now = timezone.now()
    columns = {
        "hashes": [message_hash(m) for m in messages],
        "encrypted": [encrypt(m) for m in messages],
        "subjects": [subject_hash(external_userid(n)) for n in range(args.events)],
    }
    floor_seconds = float("inf")
    for _ in range(3):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM crm_wecomevent")
            started = time.perf_counter()
            cursor.execute(
                """
                INSERT INTO crm_wecomevent (received_at, message_hash, event, change_type,
                    event_at, message_encrypted, subject_hash, status, attempts, error_code)
                SELECT %(now)s, h, 'change_external_contact', 'add_external_contact', %(now)s,
                    m, s, 'applied', 1, ''
                FROM unnest(%(hashes)s::text[], %(encrypted)s::text[], %(subjects)s::text[])
                    AS r(h, m, s)
                ON CONFLICT (message_hash) DO NOTHING
                """,
                {"now": now, **columns},
            )
            floor_seconds = min(floor_seconds, time.perf_counter() - started)
            transaction.set_rollback(True)

    # What the HTTP round trips to the fake cost alone: the same reads, one after the other.
    client = wecom_client()
    started = time.perf_counter()
    for n in range(args.events):
        client.external_contact.get(external_userid(n))
    fake_get_seconds = time.perf_counter() - started
    fake.stop()

    processed_seconds = first_seconds + pending_wait
    report = {
        "events": args.events,
        "clients": args.clients,
        "web_workers": args.web_workers,
        "processing": "celery worker (-c 2)" if args.worker else "eager, in the request",
        "first": {
            "seconds": round(processed_seconds, 2),
            "events_per_s": round(args.events / processed_seconds),
            "answers": first,
            "waiting_for_worker_seconds": round(pending_wait, 2),
        },
        "again": {
            "seconds": round(again_seconds, 2),
            "events_per_s": round(args.events / again_seconds),
            "answers": again,
        },
        "statuses": statuses,
        "floor_insert": {
            "seconds": round(floor_seconds, 4),
            "events_per_s": round(args.events / floor_seconds),
        },
        "first_to_floor": round(processed_seconds / floor_seconds, 1),
        "fake_get": {
            "seconds": round(fake_get_seconds, 2),
            "events_per_s": round(args.events / fake_get_seconds),
        },
        "load_average": {
            "start": [round(load, 2) for load in load_at_start],
            "end": [round(load, 2) for load in os.getloadavg()],
        },
    }
    print(json.dumps(report, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "wecom_callbacks.json").write_text(json.dumps(report, indent=2) + "\n")
    if statuses != {WeComEventStatus.APPLIED: args.events}:
        raise SystemExit(f"not every event was applied: {statuses}")


if __name__ == "__main__":
    main()
