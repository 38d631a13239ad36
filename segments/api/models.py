"""Predictive model endpoints: every model with its latest fit, one model's latest fit and its
versions (fitted parameters, quality on held-out data, training window), and fit requests."""

from datetime import date
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.pagination import IdCursorPagination
from core.errors import NotFound
from segments.models import ModelFit, ModelName
from segments.selectors import (
    cluster_descriptions,
    model_fit_latest,
    model_fit_list,
    model_fits_latest,
)
from segments.services.fits import fit_reason, models_fit_enqueue


class ModelFitSerializer(serializers.ModelSerializer):
    """`reason_code` and `reason` say why a fit learnt nothing; `parameters` are what it learnt
    (for clusters, each with its description); `metrics` its quality on held-out data."""

    reason_code = serializers.CharField(source="reason")
    reason = serializers.SerializerMethodField()
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    parameters = serializers.SerializerMethodField()

    class Meta:
        model = ModelFit
        fields = [
            "name",
            "version",
            "status",
            "reason_code",
            "reason",
            "trigger",
            "as_of",
            "training_start",
            "training_end",
            "training_rows",
            "features",
            "parameters",
            "metrics",
            "seed",
            "started_at",
            "finished_at",
            "duration_seconds",
            "scored_at",
            "scored_customers",
        ]

    def get_reason(self, fit: ModelFit) -> str:
        return fit_reason(fit)

    def get_parameters(self, fit: ModelFit) -> dict[str, Any]:
        if fit.name != ModelName.BEHAVIOUR_CLUSTERS:
            return fit.parameters
        descriptions = cluster_descriptions(fit)
        return {
            **fit.parameters,
            "clusters": [
                {**cluster, "description": descriptions.get(cluster["number"])}
                for cluster in fit.parameters.get("clusters", [])
            ],
        }


class ModelSerializer(serializers.Serializer):
    name = serializers.ChoiceField(choices=ModelName.choices)
    label = serializers.CharField()  # type: ignore[assignment]
    scoring_version = serializers.IntegerField(
        allow_null=True, help_text=_("The fitted version customers are scored with.")
    )
    latest = ModelFitSerializer(allow_null=True, help_text=_("The latest fit, of any status."))


ERROR_MODEL_NOT_FOUND = "model_not_found"
ERROR_MODEL_NOT_FITTED = "model_not_fitted"


def _model_name(name: str) -> str:
    if name not in ModelName.values:
        message = gettext("No model is named %(name)s.") % {"name": name}
        raise NotFound(ERROR_MODEL_NOT_FOUND, message)
    return name


class ModelListView(APIView):
    """Every predictive model with its latest fit."""

    scope_resource = "segments"

    @extend_schema(responses=ModelSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(ModelSerializer(model_fits_latest(), many=True).data)


class ModelLatestView(APIView):
    """The latest fit of one model (404 before its first fit)."""

    scope_resource = "segments"

    @extend_schema(responses=ModelFitSerializer)
    def get(self, request: Request, name: str) -> Response:
        fit = model_fit_latest(_model_name(name))
        if fit is None:
            message = gettext("This model has not been fitted yet.")
            raise NotFound(ERROR_MODEL_NOT_FITTED, message)
        return Response(ModelFitSerializer(fit).data)


class VersionCursorPagination(IdCursorPagination):
    ordering = "-version"


class ModelVersionsView(generics.ListAPIView):
    """Every fit of one model, newest first."""

    scope_resource = "segments"
    serializer_class = ModelFitSerializer
    pagination_class = VersionCursorPagination

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI schema's dry run
            return ModelFit.objects.none()
        return model_fit_list(_model_name(self.kwargs["name"]))


class FitInSerializer(serializers.Serializer):
    as_of = serializers.DateField(
        required=False,
        help_text=_(
            "Fit as of the end of this day. Default: yesterday (the last complete day). A date "
            "before that of the fits in use is a backfill: recorded, never used for scoring."
        ),
    )

    def validate_as_of(self, value: date) -> date:
        if value > timezone.localdate():
            raise serializers.ValidationError(_("A date in the future cannot be fitted yet."))
        return value


class ModelFitRequestView(APIView):
    """Queue a fit of every model, then a scoring of every buyer (202)."""

    scope_resource = "segments"

    @extend_schema(request=FitInSerializer, responses={202: FitInSerializer})
    def post(self, request: Request) -> Response:
        serializer = FitInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        models_fit_enqueue(trigger="api", as_of=serializer.validated_data.get("as_of"))
        return Response(serializer.data, status=status.HTTP_202_ACCEPTED)
