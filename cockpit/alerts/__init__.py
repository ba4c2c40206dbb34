"""The alert sinks of the operator side, and the factory that builds them from the config.

The router (policy, queues, retries, the store) is core (``core.alerts``); the sinks that
talk to something outside the engine live here: the cockpit's alerts pane (``tui_sink``), the
log (``log_sink``), and Discord and email. ``factory.make_sinks(settings)`` builds every sink
the config turns on.
"""
