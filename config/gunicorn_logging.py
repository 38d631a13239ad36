"""The gunicorn logger class of `make run` (and of production: `gunicorn --logger-class
config.gunicorn_logging.RedactingLogger`): gunicorn's access log (request line, path, query
string, referer, any header or environ atom a custom `--access-logformat` names) and its error
log (`Error handling request <uri>` and its traceback) pass through the redaction of
config.logging, whatever handlers and format are configured."""

from typing import Any

from gunicorn.glogging import Logger

from config.logging import RedactPersonalDataFilter


class RedactingLogger(Logger):  # type: ignore[misc]  # gunicorn has no type hints
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        # On the loggers, not their handlers: gunicorn replaces the handlers on a reload (and
        # a --log-config may name others); a logger's filters see every record logged to it.
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, RedactPersonalDataFilter) for f in log.filters):
                log.addFilter(RedactPersonalDataFilter())
