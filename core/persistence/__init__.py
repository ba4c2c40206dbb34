"""The SQLite store, its migrations, and the recorder that writes the bus's events to it."""
