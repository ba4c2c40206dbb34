"""A store's close: its final commit starts no checkpoint of its own (SQLite checkpoints the WAL
as the last connection closes), and a store opened again checkpoints as before."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from core.persistence import checkpoint
from core.persistence.store import Store

UPSERT = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value"


async def _commits(store: Store, n: int, tag: str) -> None:
    for i in range(n):
        store.put(("meta", "n"), UPSERT, ("n", f"{tag}{i}"))
        await store.flush()


async def test_the_final_commit_leaves_the_checkpoint_to_the_close(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite", durability="process")
    await store.open()
    await _commits(store, checkpoint.EVERY_COMMITS - 1, "a")  # the next commit is due for a checkpoint
    made = store.checkpointer.checkpoints
    store.put(("meta", "n"), UPSERT, ("n", "last"))
    await store.close()  # that commit: the close's own
    assert store.checkpointer.checkpoints == made
    assert not (tmp_path / "s.sqlite-wal").exists()  # the last connection checkpointed and removed the WAL
    with sqlite3.connect(tmp_path / "s.sqlite") as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'n'").fetchone()[0] == "last"

    await store.open()  # the same store again: checkpoints after its commits as before
    await _commits(store, checkpoint.EVERY_COMMITS + 1, "b")
    await store.checkpointer.close()  # waits for the one in flight
    assert store.checkpointer.checkpoints > made
    await store.close()
