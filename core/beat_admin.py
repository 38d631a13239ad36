"""django-celery-beat's admin in the operators' words: its pages hard-code English (a crontab
written "0 3 * * * (m/h/dM/MY/d) Asia/Shanghai" and described "At 03:00 AM", the "Scheduler"
and "Human readable" columns, the "Task Name" label and filter, the inline of the tasks using a
schedule). The package's admins are replaced by subclasses that describe a schedule in the
active language (cron_descriptor, in Chinese for zh-hans, with the business zone named as
operators name it) and label those columns through gettext. The package's own strings that
its zh_Hans catalogue leaves fuzzy are named in core.django_words."""

from typing import Any

from cron_descriptor import (
    ExpressionDescriptor,
    FormatException,
    MissingFieldException,
    Options,
    WrongArgumentException,
)
from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import ForeignKey, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from core.business_time import business_zone_name

# cron_descriptor's Chinese catalogue leaves the names of days and months in English.
CHINESE_CALENDAR_NAMES = {
    "Sunday": "周日",
    "Monday": "周一",
    "Tuesday": "周二",
    "Wednesday": "周三",
    "Thursday": "周四",
    "Friday": "周五",
    "Saturday": "周六",
    "January": "1月",
    "February": "2月",
    "March": "3月",
    "April": "4月",
    "May": "5月",
    "June": "6月",
    "July": "7月",
    "August": "8月",
    "September": "9月",
    "October": "10月",
    "November": "11月",
    "December": "12月",
}


def _zone_name(zone: Any) -> str:
    name = str(zone)
    return business_zone_name() if name == settings.TIME_ZONE else name


def crontab_description(crontab: CrontabSchedule) -> str:
    """ "每天 03:00（北京时间）" in Chinese, "At 03:00 (Beijing time)" in English; the
    expression itself when cron_descriptor cannot read it."""
    expression = " ".join(
        [
            crontab.minute,
            crontab.hour,
            crontab.day_of_month,
            crontab.month_of_year,
            crontab.day_of_week,
        ]
    )
    is_chinese = (translation.get_language() or "").startswith("zh")
    options = Options()
    options.locale_code = "zh_CN" if is_chinese else "en_US"
    options.use_24hour_time_format = True
    try:
        described = ExpressionDescriptor(expression, options).get_description()
    except (MissingFieldException, FormatException, WrongArgumentException):
        described = expression
    if is_chinese:
        for english, chinese in CHINESE_CALENDAR_NAMES.items():
            described = described.replace(english, chinese)
    return gettext("%(time)s (%(zone)s)") % {
        "time": described,
        "zone": _zone_name(crontab.timezone),
    }


def schedule_description(task: PeriodicTask) -> str:
    """A periodic task's schedule in words, whichever kind it has."""
    if task.crontab is not None:
        return crontab_description(task.crontab)
    schedule = task.interval or task.solar or task.clocked
    return str(schedule) if schedule is not None else "-"


class CrontabChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return crontab_description(obj)


class TaskNameListFilter(admin.SimpleListFilter):
    """The tasks by the names of the periodic tasks that run them (a task's code, such as
    `segments.recompute_full`, means nothing to an operator)."""

    title = _("task")
    parameter_name = "task"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names: dict[str, list[str]] = {}
        for code, name in PeriodicTask.objects.order_by("name").values_list("task", "name"):
            names.setdefault(code, []).append(name)
        return sorted(
            ((code, "、".join(named)) for code, named in names.items()), key=lambda c: c[1]
        )

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(task=self.value()) if self.value() else queryset


for model in (PeriodicTask, CrontabSchedule, IntervalSchedule, SolarSchedule, ClockedSchedule):
    admin.site.unregister(model)


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(beat_admin.PeriodicTaskAdmin):
    list_display = (
        "name",
        "enabled",
        "schedule_label",
        "start_time",
        "last_run_at",
        "one_off",
    )
    list_filter = ["enabled", "one_off", TaskNameListFilter, "start_time", "last_run_at"]
    list_select_related = ["crontab", "interval", "solar", "clocked"]
    fieldsets = (
        (None, beat_admin.PeriodicTaskAdmin.fieldsets[0][1]),
        (_("Run schedule"), beat_admin.PeriodicTaskAdmin.fieldsets[1][1]),
        *beat_admin.PeriodicTaskAdmin.fieldsets[2:],
    )
    # Django's own form (and core's breadcrumb): the package's page adds an English
    # "Translation:" of the chosen crontab, which the crontab's choices now say in words.
    change_form_template = None

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # The page's heading names the task alone (its breadcrumb too, in the template of
        # admin/django_celery_beat/periodictask/change_form.html).
        task = self.get_object(request, unquote(object_id))
        context = {**(extra_context or {}), "subtitle": task.name if task else None}
        return super().change_view(request, object_id, form_url, extra_context=context)

    @admin.display(description=_("when it runs"))
    def schedule_label(self, task: PeriodicTask) -> str:
        return schedule_description(task)

    @admin.display(description=_("schedule in words"))
    def crontab_translation(self, task: PeriodicTask) -> str:
        return crontab_description(task.crontab) if task.crontab is not None else "-"

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "crontab" and isinstance(db_field, ForeignKey):
            kwargs["form_class"] = CrontabChoiceField
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "task" and field is not None:
            field.label = gettext("Task name")
        return field


class PeriodicTaskInline(beat_admin.PeriodicTaskInline):
    fields = readonly_fields = ("name", "task_name", "args", "kwargs")
    verbose_name = verbose_name_plural = _("periodic tasks using this schedule")

    @admin.display(description=_("task name"))
    def task_name(self, task: PeriodicTask) -> str:
        return task.task


class ScheduleAdmin(admin.ModelAdmin):
    inlines = [PeriodicTaskInline]


@admin.register(CrontabSchedule)
class CrontabScheduleAdmin(ScheduleAdmin):
    list_display = ("expression", "description")
    fields = (
        "description",
        "minute",
        "hour",
        "day_of_month",
        "month_of_year",
        "day_of_week",
        "timezone",
    )
    readonly_fields = ("description",)

    @admin.display(description=_("crontab expression"))
    def expression(self, crontab: CrontabSchedule) -> str:
        return " ".join(
            [
                crontab.minute,
                crontab.hour,
                crontab.day_of_month,
                crontab.month_of_year,
                crontab.day_of_week,
            ]
        )

    @admin.display(description=_("schedule in words"))
    def description(self, crontab: CrontabSchedule) -> str:
        return crontab_description(crontab)


@admin.register(IntervalSchedule)
class IntervalScheduleAdmin(ScheduleAdmin):
    pass


@admin.register(SolarSchedule)
class SolarScheduleAdmin(ScheduleAdmin):
    pass


@admin.register(ClockedSchedule)
class ClockedScheduleAdmin(ScheduleAdmin):
    fields = ("clocked_time",)
    list_display = ("clocked_time",)
