"""The API docs (`/api/docs/`) work offline: Swagger UI comes from this server's static files
(drf-spectacular-sidecar, collected like the admin's), never from a CDN."""

import re

import pytest
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db

_ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


def test_the_docs_page_loads_only_local_files(api_client_with_scopes, settings, tmp_path) -> None:
    settings.STATIC_ROOT = tmp_path  # collected as `make run` and a deployment do
    call_command("collectstatic", interactive=False, verbosity=0)

    page = api_client_with_scopes("customers:read").get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assets = _ASSET.findall(html)
    assert len(assets) == 4  # the favicon, the stylesheet and the two scripts
    assert "://" not in html  # no other host, in an attribute or in the inline script
    static = Client()  # a new client: its WhiteNoise finds the files just collected
    for asset in assets:
        assert asset.startswith("/static/drf_spectacular_sidecar/swagger-ui-dist/")
        response = static.get(asset)
        assert (asset, response.status_code) == (asset, 200)
        assert b"".join(response.streaming_content)
