"""The stack runner behind `make run`: its secrets, and the WeCom fake it starts or leaves out."""

from io import StringIO

import pytest
from django.core.management import call_command

from core.services.api_keys import SCOPES, api_key_authenticate

pytestmark = pytest.mark.django_db


def test_run_stack_secrets_are_stable_and_private(tmp_path, monkeypatch) -> None:
    from devstack.management.commands import run_stack

    monkeypatch.delenv("CRM_OPERATOR_PASSWORD", raising=False)
    raw_key = run_stack._quickstart_key(tmp_path)
    assert run_stack._quickstart_key(tmp_path) == raw_key
    api_key = api_key_authenticate(raw_key)
    assert api_key is not None and api_key.name == "quickstart"
    assert sorted(api_key.scopes) == sorted(SCOPES)
    assert (tmp_path / "quickstart_api_key").stat().st_mode & 0o777 == 0o600

    password = run_stack._operator_password(tmp_path)
    assert run_stack._operator_password(tmp_path) == password
    assert (tmp_path / "operator_password").stat().st_mode & 0o777 == 0o600
    run_stack._ensure_operator(password)
    run_stack._ensure_operator(password)
    from django.contrib.auth import get_user_model

    operator = get_user_model().objects.get(username="operator")
    assert operator.is_superuser and operator.check_password(password)

    # A revoked stored key is replaced by a new one.
    call_command("revoke_api_key", raw_key.partition(".")[0], stdout=StringIO())
    assert run_stack._quickstart_key(tmp_path) != raw_key


def test_run_stack_runs_the_wecom_fake_and_points_web_and_worker_at_it(
    tmp_path, monkeypatch
) -> None:
    import json
    import subprocess
    import time
    import urllib.parse
    import urllib.request

    from devstack.demo import DEMO_CORP_ID
    from devstack.management.commands import run_stack

    for name in ("WECOM_API_BASE_URL", "WECOM_CORP_ID", "WECOM_SECRET"):
        monkeypatch.delenv(name, raising=False)
    port = run_stack._wecom_fake_port()
    assert port is not None
    env = run_stack.Command()._child_env(tmp_path, port)
    assert env["WECOM_API_BASE_URL"] == f"http://127.0.0.1:{port}/cgi-bin/"
    assert env["WECOM_CORP_ID"] == DEMO_CORP_ID  # the demo customers' WeCom identities
    commands = run_stack._commands(8000, port)
    assert list(commands) == ["wecom", "web", "worker", "beat"]  # the fake listens first
    # The demo corp, its customers arriving live through web's callback URL.
    wecom = commands["wecom"]
    assert "--demo-corp" in wecom
    assert wecom[wecom.index("--live-callback-url") + 1] == "http://127.0.0.1:8000/wecom/callback"
    assert "--demo-corp" not in run_stack._commands(8000, port, demo=False)["wecom"]
    out = StringIO()
    run_stack.Command(stdout=out)._banner(8000, "password", "key", tmp_path, port, live=True)
    assert f"http://127.0.0.1:{port}/_fake/messages" in out.getvalue()
    assert "渠道活码" in out.getvalue()

    # The child as the stack starts it answers what web and worker will ask, with their env.
    fake = subprocess.Popen(commands["wecom"], env=env, stdout=subprocess.DEVNULL)
    query = urllib.parse.urlencode(
        {"corpid": env["WECOM_CORP_ID"], "corpsecret": env["WECOM_SECRET"]}
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(  # noqa: S310 - the loopback URL built above
                    f"{env['WECOM_API_BASE_URL']}gettoken?{query}", timeout=2
                ) as response:
                    answer = json.loads(response.read())
                break
            except OSError:
                assert fake.poll() is None and time.monotonic() < deadline, "fake did not start"
                time.sleep(0.1)
        # It serves the demo corp: the demo data's guides.
        with urllib.request.urlopen(  # noqa: S310 - the loopback URL built above
            f"{env['WECOM_API_BASE_URL']}externalcontact/get_follow_user_list"
            f"?access_token={answer['access_token']}",
            timeout=5,
        ) as response:
            staff = json.loads(response.read())["follow_user"]
    finally:
        fake.terminate()
        fake.wait(timeout=10)
    assert answer["errcode"] == 0 and answer["access_token"]
    assert staff == [f"demo_guide_{n:02d}" for n in range(1, 7)]


def test_run_stack_uses_a_configured_wecom_and_keeps_its_corp(tmp_path, monkeypatch) -> None:
    from devstack.management.commands import run_stack

    monkeypatch.setenv("WECOM_API_BASE_URL", "https://wecom.example/cgi-bin/")
    monkeypatch.setenv("WECOM_CORP_ID", "ww_brand")
    monkeypatch.setenv("WECOM_SECRET", "brand-secret")
    assert run_stack._wecom_fake_port() is None
    assert "wecom" not in run_stack._commands(8000, None)
    env = run_stack.Command()._child_env(tmp_path, None)
    assert (env["WECOM_API_BASE_URL"], env["WECOM_CORP_ID"], env["WECOM_SECRET"]) == (
        "https://wecom.example/cgi-bin/",
        "ww_brand",
        "brand-secret",
    )
    out = StringIO()
    run_stack.Command(stdout=out)._banner(8000, "password", "key", tmp_path, None)
    assert "WeCom fake" not in out.getvalue()
    # Without a base URL, a corp id and secret of the caller's own still go to the fake.
    monkeypatch.delenv("WECOM_API_BASE_URL")
    port = run_stack._wecom_fake_port()
    assert port is not None
    env = run_stack.Command()._child_env(tmp_path, port)
    assert (env["WECOM_CORP_ID"], env["WECOM_SECRET"]) == ("ww_brand", "brand-secret")


def test_run_stack_wecom_fake_port_moves_when_taken() -> None:
    import socket

    from devstack.management.commands import run_stack

    with socket.socket() as other_stack:
        other_stack.bind(("127.0.0.1", 0))
        other_stack.listen()
        taken = other_stack.getsockname()[1]
        port = run_stack._free_port(taken)
        assert port != taken
    assert run_stack._free_port(taken) == taken  # free again once the other one is gone
