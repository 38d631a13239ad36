from django.apps import AppConfig


class DevstackConfig(AppConfig):
    """Installed for its management commands (`run_stack`, `load_demo_data`,
    `load_demo_segments`); it has no models."""

    name = "devstack"
