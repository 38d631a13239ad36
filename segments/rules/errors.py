"""Errors of the segment rule language. Every wrong rule raises one domain error, InvalidRule,
which lists each problem with its place in the tree (`$.all[2].any[0].value`) and what is wrong
there; the API answers it with HTTP 400."""

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.translation import gettext as _

from core.errors import ValidationFailed

ERROR_INVALID_RULE = "invalid_rule"


@dataclass(frozen=True)
class RuleProblem:
    path: str
    message: str


class InvalidRule(ValidationFailed):
    """A rule that cannot be used. `detail["rule"]` lists the problems in tree order as
    `{"path": ..., "message": ...}`; the error's own message repeats the first one."""

    def __init__(self, problems: Sequence[RuleProblem]) -> None:
        first = problems[0]
        super().__init__(
            ERROR_INVALID_RULE,
            _("Invalid rule at %(path)s: %(message)s")
            % {"path": first.path, "message": first.message},
            detail={"rule": [{"path": p.path, "message": p.message} for p in problems]},
        )
        self.problems = tuple(problems)


class RuleError(Exception):
    """The one problem a value or parameter parser found. The compiler records it and goes on
    with the rest of the tree, so that a rule's every wrong leaf is reported at once."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.problem = RuleProblem(path=path, message=message)
