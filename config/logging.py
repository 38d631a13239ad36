"""Log formatting: every record carries its `extra` fields as `key=value` pairs after the event
name, so logs stay greppable by id. Callers pass ids only, never personal data."""

import logging

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class ExtraFieldsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        extras.pop("extra_fields", None)
        record.extra_fields = " ".join(f"{k}={v}" for k, v in sorted(extras.items()))
        return True
