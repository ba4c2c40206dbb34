"""The [alerts] section: the defaults config.toml documents, routes over the defaults, and every
number refused out of range with one line naming the key."""

from __future__ import annotations

import pytest

from core.config import AlertsConfig, ConfigError, load_config, validate_config
from tests.conftest import CONFIG


def test_config_toml_documents_the_defaults(clean_env: dict[str, str]) -> None:
    assert load_config(CONFIG).alerts == AlertsConfig()


def test_a_route_given_replaces_that_sinks_default_only() -> None:
    cfg = AlertsConfig.model_validate({"routes": {"discord": {"kinds": ["fill"], "min_severity": "WARNING"}},
                                       "rate_per_minute": {"discord": 5}})
    assert cfg.routes["discord"].kinds == ["fill"] and cfg.routes["discord"].min_severity == "warning"
    assert cfg.routes["tui"].kinds == ["*"] and "deadman.*" in cfg.routes["email"].kinds
    assert cfg.rate_of("discord") == 5 and cfg.rate_of("email") == 6 and cfg.rate_of("tui") == 0


def test_the_environment_sets_a_key(clean_env: dict[str, str]) -> None:
    validate_config({}, {"COCKPIT_ALERTS__MAX_TRIES": "7"})
    with pytest.raises(ConfigError, match=r"alerts.max_tries \(env COCKPIT_ALERTS__MAX_TRIES\)"):
        validate_config({}, {"COCKPIT_ALERTS__MAX_TRIES": "0"})


@pytest.mark.parametrize(("alerts", "says"), [
    ({"dedupe_window_seconds": -1}, "alerts.dedupe_window_seconds: Input should be greater than or equal to 0"),
    ({"dedupe_window_seconds": 1e9}, "alerts.dedupe_window_seconds: Input should be less than or equal to 86400"),
    ({"queue_size": 0}, "alerts.queue_size: Input should be greater than or equal to 1"),
    ({"queue_size": 10**7}, "alerts.queue_size: Input should be less than or equal to 1000000"),
    ({"max_tries": 0}, "alerts.max_tries: Input should be greater than or equal to 1"),
    ({"send_timeout_seconds": 0}, "alerts.send_timeout_seconds: Input should be greater than 0"),
    ({"send_timeout_seconds": float("nan")}, "alerts.send_timeout_seconds: Input should be a finite number"),
    ({"backoff_seconds": 10, "max_backoff_seconds": 5}, "max_backoff_seconds 5 must be at least backoff_seconds 10"),
    ({"drain_seconds": 500}, "alerts.drain_seconds: Input should be less than or equal to 120"),
    ({"rate_per_minute": {"discord": -1}}, "alerts.rate_per_minute: discord must be 0 (no cap) to 6000, not -1"),
    ({"rate_per_minute": {"Discord!": 1}}, "sink name 'Discord!' must be lowercase"),
    ({"routes": {"email": {"min_severity": "loud"}}}, "alerts.routes.email.min_severity: min_severity must be one of "
                                                     "info, warning, error, critical, not 'loud'"),
    ({"routes": {"email": {"kinds": ["risk breach"]}}}, "alerts.routes.email.kinds: kind pattern 'risk breach'"),
    ({"routes": {"email": {"to": "me"}}}, "unknown key 'alerts.routes.email.to'"),
    ({"bogus": 1}, "unknown key 'alerts.bogus'"),
])
def test_bad_values_refuse_with_one_line(alerts: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError) as refused:
        validate_config({"alerts": alerts})
    message = str(refused.value)
    assert says in message and "\n" not in message, message


def test_the_default_routes_send_the_daily_summary_to_discord_and_email(tmp_path) -> None:
    """Before: email's least severity was warning, so the (info) daily summary never reached it."""
    from datetime import UTC, datetime

    from core.alerts.lane import Route
    from core.alerts.model import Alert, Severity
    from core.config import load_config
    from tests.conftest import CONFIG

    cfg = load_config(CONFIG, state_dir=tmp_path).alerts
    summary = Alert("daily.summary", Severity.INFO, "Daily P&L", "...", "daily.summary", datetime.now(UTC))
    fill = Alert("fill", Severity.INFO, "Filled", "...", "fill:AAPL", datetime.now(UTC))
    assert Route(cfg.routes["email"]).accepts(summary) and Route(cfg.routes["discord"]).accepts(summary)
    assert Route(cfg.routes["discord"]).accepts(fill) and not Route(cfg.routes["email"]).accepts(fill)
