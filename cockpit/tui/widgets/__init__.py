"""The cockpit's widgets, one per module; each draws what it is given and holds no business logic."""
