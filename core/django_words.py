"""Django's own words that the project's catalogue translates otherwise, named here so that
`makemessages` keeps them in locale/zh_Hans (a catalogue in LOCALE_PATHS wins over Django's).

Django's auth "group" is a permission group (权限组); Django says 组, which an operator reads
next to the customer group chats (社群, crm.Group, translated under its own context). The app
list's column headers (read by screen readers) are missing from Django's zh_Hans catalogue.
django-celery-beat says 周期任务 for what operators call 定时任务, and leaves some of its
words fuzzy (untranslated); core.beat_admin relabels what it hard-codes."""

from django.utils.translation import gettext_noop

DJANGO_WORDS = (
    gettext_noop("group"),
    gettext_noop("groups"),
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
    gettext_noop("Periodic Tasks"),
    gettext_noop("periodic task"),
    gettext_noop("periodic tasks"),
    # django-celery-beat's own, fuzzy (so shown in English) in its zh_Hans catalogue.
    gettext_noop("Arguments"),
    gettext_noop("Execution Options"),
    # Its help texts, whose Chinese keeps code words (False, None, enabled).
    gettext_noop("Set to False to disable the schedule"),
    gettext_noop("If True, the schedule will only run the task a single time"),
    gettext_noop(
        "Datetime that the schedule last triggered the task to run. "
        "Reset to None if enabled is set to False."
    ),
)
