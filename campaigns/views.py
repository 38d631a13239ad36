"""Public pages of the campaign engine: the tracked-link redirect, which needs no login."""

from django.http import Http404, HttpRequest, HttpResponseRedirect

from campaigns.services.links import link_click_record
from core.errors import NotFound


def link_redirect(request: HttpRequest, token: str) -> HttpResponseRedirect:
    try:
        return HttpResponseRedirect(link_click_record(token=token))
    except NotFound as error:
        raise Http404(error.message) from None
