"""The WeCom client's access token, shared by every process through the cache (two clients
stand for two processes), and never written to the cache before the caller's transaction
commits (another process would wait on that row)."""

import threading

import pytest
from django.conf import settings
from django.db import connection, transaction

from crm.wecom.client import WeComClient
from devstack.wecom_fake import ENDPOINT_GETTOKEN, FakeWeCom

pytestmark = pytest.mark.django_db(transaction=True)


def _client() -> WeComClient:
    return WeComClient(settings.WECOM_API_BASE_URL, settings.WECOM_CORP_ID, settings.WECOM_SECRET)


def _token_fetches(fake: FakeWeCom) -> int:
    return sum(call["endpoint"] == ENDPOINT_GETTOKEN for call in fake.calls())


def test_two_processes_share_one_token(fake: FakeWeCom) -> None:
    _client().external_contact.get_follow_user_list()
    _client().external_contact.get_follow_user_list()
    assert _token_fetches(fake) == 1


def test_a_token_fetched_inside_a_transaction_is_shared_once_it_commits(
    fake: FakeWeCom,
) -> None:
    first = _client()
    with transaction.atomic():
        first.external_contact.get_follow_user_list()
        # Another process meanwhile neither sees the token nor waits for this transaction.
        done = threading.Event()

        def other_process() -> None:
            try:
                _client().external_contact.get_follow_user_list()
                done.set()
            finally:
                connection.close()

        thread = threading.Thread(target=other_process)
        thread.start()
        thread.join(timeout=20)
        assert done.is_set()
        assert _token_fetches(fake) == 2
        first.external_contact.get_follow_user_list()  # its own token, kept in the process
        assert _token_fetches(fake) == 2
    _client().external_contact.get_follow_user_list()
    assert _token_fetches(fake) == 2
