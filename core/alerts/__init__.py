"""Alerts: what leaves the box when something happens (issue 12). The model and the sink
interface live here; the router (policy: severity, de-duplication, digests, resolved, rate
limits, retries, the undelivered spool) is core; sinks that talk to a network live outside core
(cockpit/alerts/) and implement ``core.alerts.sink.Sink``."""
