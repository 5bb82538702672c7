"""Settings read from the environment, and the Celery configuration derived from them."""

from config.settings import Secret, Settings, SettingsError, load_settings

__all__ = ["Secret", "Settings", "SettingsError", "load_settings"]
