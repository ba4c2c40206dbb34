"""An IB Gateway simulator: a loopback TCP server that speaks the real TWS API wire protocol.

Run it with ``cockpit ib-sim --port PORT [--state FILE]`` (or ``python -m brokers.ibsim``)
to rehearse IBKR mode without an account, or start :class:`IBGatewaySim` in a test and
drive its fault controls. See ``server.py`` for the behaviour and ``README.md`` in this
package for where it differs from a real gateway.
"""

from brokers.ibsim.server import MIN_CLIENT_VERSION, SERVER_VERSION, IBGatewaySim, Received

__all__ = ["IBGatewaySim", "MIN_CLIENT_VERSION", "Received", "SERVER_VERSION"]
