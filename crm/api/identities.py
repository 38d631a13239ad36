"""The identity shape shared by every endpoint: `{"provider", "namespace", "value"}`."""

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from crm.models import IdentityProvider
from crm.personal_data import IdentityError, IdentityKey, identity_key


class IdentitySerializer(serializers.Serializer):
    """Validates one identity; `validated_data` is an `IdentityKey` (normalised and hashed)."""

    provider = serializers.ChoiceField(choices=IdentityProvider.choices)
    namespace = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    value = serializers.CharField(max_length=128, trim_whitespace=True)
    is_sensitive = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs: dict[str, Any]) -> IdentityKey:  # type: ignore[override]
        try:
            return identity_key(**attrs)
        except IdentityError as error:
            raise serializers.ValidationError(
                {error.field: [str(error)]}, code=error.code
            ) from error


class IdentityListField(serializers.ListField):
    """A non-empty list of identities naming one customer."""

    child = IdentitySerializer()

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_length", 1)
        kwargs.setdefault("max_length", 20)
        kwargs.setdefault("error_messages", {"empty": _("At least one identity is required.")})
        super().__init__(**kwargs)
