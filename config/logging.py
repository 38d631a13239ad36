"""Log formatting and redaction.

Every record carries its `extra` fields as `key=value` pairs after the event name, so logs stay
greppable by id. Callers pass ids only, never personal data; what the frameworks log on their
own (Django's `Not Found: <path>`, gunicorn's request line, a request's repr with its query
string, a traceback) goes through `redact_personal_data` on every handler: identity values in
`/customers/by-identity/<provider>/<value>` paths, the values of query parameters that may
carry personal data (a search, a name, a phone), and anything shaped like a phone number, a
WeCom external_userid or a WeChat openid/unionid become `***`.

Imported by the gunicorn logger class (config.gunicorn_logging) before Django is set up: the
standard library only."""

import logging
import re

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

REDACTED = "***"

# The identity value of the deprecated path-carrying lookup, up to the query string or the end
# of the path (a value holding a slash is cut there by the router, but logged whole).
_IDENTITY_PATH = re.compile(r"(/customers/by-identity/[^/?#\s\"'<>]+/)[^?#\s\"'<>]+")

# Query parameters whose value may be personal: a search or an admin `q`, any parameter named
# after a phone, a name, an identity, an id of WeChat or WeCom, an e-mail address, an owner;
# the admin's preserved filters (`_changelist_filters`, itself a query string); not an
# identity's `namespace` (a corp id or an appid). Found after `?`, `&` or `;`, plain or
# percent-encoded (a `next=` or a referer carrying a URL). Names are matched whole, then
# judged by `_is_personal_parameter`: possessive quantifiers, so that no request line, however
# long or odd, makes the match backtrack.
_PARAMETER = re.compile(
    r"((?:[?&;]|%3F|%26)(?:amp;)?)([\w.\[\]-]++)(=|%3D)((?:(?!%26)[^&;\s\"'#<>])*+)",
    re.IGNORECASE | re.ASCII,
)
_PERSONAL_PARAMETERS = {"q", "search", "term", "keyword", "owner", "_changelist_filters"}
_PERSONAL_PARAMETER_PARTS = (
    "phone",
    "mobile",
    "name",
    "identit",
    "value",
    "unionid",
    "openid",
    "userid",
    "email",
)
_IMPERSONAL_PARAMETERS = {"namespace"}


def _is_personal_parameter(name: str) -> bool:
    name = name.lower()
    if name in _IMPERSONAL_PARAMETERS:
        return False
    return name in _PERSONAL_PARAMETERS or any(part in name for part in _PERSONAL_PARAMETER_PARTS)


def _redact_parameter(match: re.Match[str]) -> str:
    """The parameter with its value redacted, or, when it is not a personal one, with the
    parameters of an encoded URL in its value redacted (`next=/admin/…%3Fq%3D…`)."""
    if _is_personal_parameter(match[2]):
        value = REDACTED
    else:
        value = _PARAMETER.sub(_redact_parameter, match[4])
    return f"{match[1]}{match[2]}{match[3]}{value}"


# A phone number: a Chinese mobile number, bare or with its country code (+86, 0086, 86),
# with or without separators (space, dash, dot, `+` or `%20` of a URL's query); or any number
# in E.164 form (`+` or `%2B`, then 7 to 15 digits).
_SEPARATOR = r"(?:[ .-]|%20|\+)?"
_PHONE = re.compile(
    rf"(?<!\d)(?:(?:\+|%2B|00)?86{_SEPARATOR})?1[3-9]\d(?:{_SEPARATOR}\d){{8}}(?!\d)"
    r"|(?:\+|%2B)\d{7,15}(?!\d)",
    re.IGNORECASE,
)

# A WeCom external_userid (`wm…` / `wo…`) or a WeChat openid/unionid (`o…`, 28 characters):
# a token of that shape holding an upper-case letter or a digit, so that words are left alone.
_WECHAT_ID = re.compile(
    r"(?<![\w-])(?:w[mo](?=[\w-]*[A-Z0-9])[\w-]{18,62}|o(?=[\w-]*[A-Z0-9])[\w-]{26,28})(?![\w-])",
    re.ASCII,
)


def redact_personal_data(text: str) -> str:
    """`text` with every identity value, personal query parameter and phone- or WeChat-id-shaped
    token replaced by `***`."""
    text = _IDENTITY_PATH.sub(rf"\1{REDACTED}", text)
    text = _PARAMETER.sub(_redact_parameter, text)
    text = _PHONE.sub(REDACTED, text)
    return _WECHAT_ID.sub(REDACTED, text)


class ExtraFieldsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        extras.pop("extra_fields", None)
        record.extra_fields = " ".join(f"{k}={v}" for k, v in sorted(extras.items()))
        return True


_TRACEBACK_FORMATTER = logging.Formatter()


class RedactPersonalDataFilter(logging.Filter):
    """Redacts the record's message (formatted with its arguments), its `extra_fields` (after
    ExtraFieldsFilter: a request's repr holds its path and query string), its traceback and
    stack. Placed on every handler (Django's settings, Celery's signals) or on a logger whose
    records reach handlers of their own (gunicorn's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = redact_personal_data(message), None
        extra_fields = getattr(record, "extra_fields", None)
        if isinstance(extra_fields, str):
            record.extra_fields = redact_personal_data(extra_fields)
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACK_FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_personal_data(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_personal_data(record.stack_info)
        return True


def redact_handlers_of(logger: logging.Logger) -> None:
    """Put the redaction on every handler of `logger` (once each)."""
    for handler in logger.handlers:
        if not any(isinstance(f, RedactPersonalDataFilter) for f in handler.filters):
            handler.addFilter(RedactPersonalDataFilter())
