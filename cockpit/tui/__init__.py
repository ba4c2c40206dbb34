"""The full-screen Textual cockpit. Imported only when the UI runs (never by --no-ui)."""
