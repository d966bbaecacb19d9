"""Channel connectors, one module each; their names here, importable without their clients."""

__all__ = ["CHANNEL_NAMES"]

CHANNEL_NAMES = ("email", "sms", "push", "web", "crm", "print", "webhook")
