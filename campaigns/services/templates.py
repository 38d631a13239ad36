"""Message templates: `{{ variable }}` placeholders a variant's text may hold, filled with the
customer's values when the text is rendered for one customer."""

import re
from typing import Any

TEMPLATE_VARIABLES = ("display_name", "city", "province", "member_level", "owner_name")
# The variables that are the customer's own (owner_name is the sender's, and a call has one
# sender): a WeCom call holds customers whose values of those its variant names agree, and a
# group-chat message, read by a whole chat, names none.
CUSTOMER_VARIABLES = ("display_name", "city", "province", "member_level")
TEMPLATE_VARIABLE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def template_variables(content: str) -> list[str]:
    """The variables a message names, in order of appearance."""
    return [match.group(1) for match in TEMPLATE_VARIABLE.finditer(content)]


def template_render(content: str, values: dict[str, Any]) -> str:
    """The message with each {{ variable }} replaced by the customer's value (blank if none)."""
    return TEMPLATE_VARIABLE.sub(lambda match: str(values.get(match.group(1)) or ""), content)
