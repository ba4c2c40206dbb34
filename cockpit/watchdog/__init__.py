"""`cockpit watchdog`: the process watchdog for installs without systemd's (docker).

Docker restarts a dead engine but has no ``OnFailure=``: nobody would flatten. The watchdog, a
small separate process sharing the state dir, does what cockpit-emergency.service does when
the engine dies (the state lock free, no clean stop in its run record) or hangs (no answer on
its control socket for ``[watchdog] hung_seconds``). One module per job:

verdict    died, hung, rebooted (went down with the machine) or nothing, from what it sees (pure)
heartbeat  its own file in the state dir: heartbeat, what it is doing, the runs it handled
respond    the response: the halt-on-start latch (cockpit/halt_latch.py), audit row, the emergency
           flatten and its alert
reboot     a run that went down with the machine: no flatten, its alert (what the book held)
loop       the polling loop and the status requests
cli        `cockpit watchdog [--check]`
"""
