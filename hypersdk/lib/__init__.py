"""Helpers every app shares: settings parsing, the event bus, outbound HTTP, security and process
supervision. Nothing here imports an app; apps import from here."""
