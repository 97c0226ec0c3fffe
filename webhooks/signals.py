"""Signals other apps may listen to without webhooks knowing them (metrics counts attempts)."""

from django.dispatch import Signal

# Sent after each delivery attempt is recorded; ``status`` is the delivery's status after it.
delivery_attempted = Signal()
