"""The names of the store's files in the state dir: a module with no imports, so that the
readers (`cockpit positions` ...) find the store without loading the store's code."""

DB_FILENAME = "cockpit.sqlite"
