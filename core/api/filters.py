"""Filter sets whose filters only validate query parameters: the cleaned values go to a
selector, which owns the query (so the API and the admin filter the same way)."""

from typing import Any

import django_filters
from django import forms


class IntegerInFilter(django_filters.BaseInFilter, django_filters.NumberFilter):
    """Comma-separated whole numbers (ids): anything else is a 400 naming the parameter."""

    field_class = forms.IntegerField


class SelectorFilterSet(django_filters.FilterSet):
    """Declare filters with `method="noop"` and implement `select(data)`."""

    def noop(self, queryset: Any, name: str, value: Any) -> Any:
        return queryset

    def filter_queryset(self, queryset: Any) -> Any:
        return self.select(self.form.cleaned_data)

    def select(self, data: dict[str, Any]) -> Any:
        raise NotImplementedError
