"""The root of the site leads to the admin, which offers no "view site" link to nowhere."""

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_the_root_redirects_to_the_admin() -> None:
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")


def test_the_admin_offers_no_view_site_link(admin_client_en: Client) -> None:
    page = admin_client_en.get(reverse("admin:index"))
    assert page.status_code == 200
    assert "View site" not in page.content.decode()
