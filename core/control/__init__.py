"""The operator's side of the engine: the command handler, the read model, the dead-man, alert texts."""
