"""The full-screen Textual cockpit. Imported only when the UI runs (never by --no-ui).

app.py hosts the engine (through cockpit/engine_host.py, as headless does), owns the keys
(actions.py) and the modals, and hands each snapshot down to screens/main_screen.py, which
hands each pane its part (widgets/, one per module; rows.py formats and orders the rows).
operator.py holds the operator's prompt-confirm-command flows; cockpit.tcss the styles.
"""
