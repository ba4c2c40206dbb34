"""The book: the only writer of positions, cash and each owner's position; equity over time."""
