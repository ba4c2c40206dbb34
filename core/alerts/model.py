"""The alert model, where the alerts package's users look for it; it lives in the domain
(core.domain.alert) because events such as DailySummaryReady carry an alert of their own."""

from core.domain.alert import Alert, Severity

__all__ = ["Alert", "Severity"]
