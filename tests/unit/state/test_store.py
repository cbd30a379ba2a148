"""The store thread: order, batches, savepoints, failures, stop."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from oslo_config import cfg
from sqlalchemy.orm import Session

from tests.unit.state.conftest import Gate, new_id, pg_admin, volume_fields
from volworker import exception
from volworker.state import Store, StoreConnectionLost, StoreNotRunning, records
from volworker.state.models import VolumeRecord


def _add(fields: dict[str, Any]) -> Callable[[Session], dict[str, Any]]:
    def work(session: Session) -> dict[str, Any]:
        row = records.insert(session, "volume", **fields)
        if row is None:
            raise sa.exc.IntegrityError("INSERT", {}, Exception("id taken"))
        return dict(row.to_dict())

    return work


def _get(volume_id: str) -> Callable[[Session], dict[str, Any]]:
    def work(session: Session) -> dict[str, Any]:
        row = records.load(session, "volume", volume_id)
        if row is None:
            raise exception.VolumeNotFound(volume_id=volume_id)
        return dict(row.to_dict())

    return work


def _set_status(volume_id: str, status: str) -> Callable[[Session], None]:
    return lambda session: records.update(session, "volume", volume_id, status=status)


def _load(volume_id: str) -> Callable[[Session], Any]:
    return lambda session: records.load(session, "volume", volume_id)


def _count_commits(store: Store) -> list[int]:
    commits: list[int] = []
    sa.event.listen(store.engine, "commit", lambda conn: commits.append(1))
    return commits


def test_reads_see_earlier_writes_without_waiting(store: Store) -> None:
    fields = volume_fields()
    futures = [
        store.submit(_add(fields)),
        store.submit(_get(fields["id"])),
        store.submit(_set_status(fields["id"], "in-use")),
        store.submit(_get(fields["id"])),
    ]
    results = [f.result(timeout=30) for f in futures]
    assert results[1]["status"] == "available"
    assert results[3]["status"] == "in-use"


def test_items_run_in_submission_order(store: Store) -> None:
    seen: list[int] = []
    futures = [store.submit(lambda s, i=i: seen.append(i) or i) for i in range(300)]
    assert [f.result(timeout=30) for f in futures] == list(range(300))
    assert seen == list(range(300))


def test_concurrent_submitters_keep_their_own_order(store: Store) -> None:
    seen: list[tuple[int, int]] = []
    futures: list[Any] = []
    lock = threading.Lock()

    def producer(thread: int) -> None:
        for i in range(200):
            future = store.submit(lambda s, item=(thread, i): seen.append(item))
            with lock:
                futures.append(future)

    threads = [threading.Thread(target=producer, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for future in futures:
        future.result(timeout=30)
    assert len(seen) == 8 * 200
    for t in range(8):
        assert [i for thread, i in seen if thread == t] == list(range(200))


def test_queued_items_share_one_transaction(
    store: Store, gate: Callable[[], Gate]
) -> None:
    commits = _count_commits(store)
    with gate():
        futures = [store.submit(_add(volume_fields())) for _ in range(50)]
    for future in futures:
        future.result(timeout=30)
    # One for the gate's own batch, one for all fifty.
    assert len(commits) == 2


def test_batches_are_at_most_batch_max(db_url: str) -> None:
    store = Store(db_url, batch_max=20)
    store.start()
    try:
        commits = _count_commits(store)
        with Gate(store):
            futures = [store.submit(_add(volume_fields())) for _ in range(50)]
        for future in futures:
            future.result(timeout=30)
        assert len(commits) == 1 + 3
    finally:
        store.stop(timeout=30)


def test_a_failing_item_fails_alone(store: Store, call: Any, gate: Any) -> None:
    first, second = volume_fields(), volume_fields()

    def broken(session: Session) -> None:
        records.update(session, "volume", first["id"], status="error")
        raise ValueError("broken work item")

    commits = _count_commits(store)
    with gate():
        futures = [
            store.submit(_add(first)),
            store.submit(_add(first)),  # the same id again
            store.submit(broken),
            store.submit(_add(second)),
        ]
    assert futures[0].result(timeout=30)["id"] == first["id"]
    with pytest.raises(sa.exc.IntegrityError):
        futures[1].result(timeout=30)
    with pytest.raises(ValueError, match="broken work item"):
        futures[2].result(timeout=30)
    assert futures[3].result(timeout=30)["id"] == second["id"]
    assert len(commits) == 2
    # The broken item's update was rolled back with its savepoint.
    assert call(_get(first["id"]))["status"] == "available"


def _commit_breaker(store: Store) -> Callable[[Session], None]:
    """A work item that succeeds but makes its transaction's COMMIT fail."""
    if store.engine.dialect.name == "postgresql":

        def breaker(session: Session) -> None:
            session.execute(
                sa.text(
                    "CREATE TABLE breaker (x INTEGER "
                    "UNIQUE DEFERRABLE INITIALLY DEFERRED)"
                )
            )
            session.execute(sa.text("INSERT INTO breaker VALUES (1), (1)"))

        return breaker

    # SQLite checks deferred foreign keys at COMMIT, when enabled.
    sa.event.listen(
        store.engine,
        "connect",
        lambda dbapi_conn, _rec: dbapi_conn.execute("PRAGMA foreign_keys = ON"),
    )
    store.engine.dispose()

    def sqlite_breaker(session: Session) -> None:
        session.execute(sa.text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        session.execute(
            sa.text(
                "CREATE TABLE child (parent_id INTEGER REFERENCES parent (id) "
                "DEFERRABLE INITIALLY DEFERRED)"
            )
        )
        session.execute(sa.text("INSERT INTO child VALUES (1)"))

    return sqlite_breaker


def test_a_failed_commit_fails_the_whole_batch(
    store: Store, call: Any, gate: Any
) -> None:
    breaker = _commit_breaker(store)
    first, second = volume_fields(), volume_fields()
    with gate():
        futures = [
            store.submit(_add(first)),
            store.submit(breaker),
            store.submit(_add(second)),
        ]
    for future in futures:
        with pytest.raises(sa.exc.IntegrityError):
            future.result(timeout=30)
    for fields in (first, second):
        assert call(_load(fields["id"])) is None
    # The store goes on.
    assert call(_add(first))["id"] == first["id"]


def test_stop_runs_what_is_queued(store: Store, gate: Any) -> None:
    with gate():
        futures = [store.submit(_add(volume_fields())) for _ in range(100)]
        stopper = threading.Thread(target=store.stop)
        stopper.start()
        while store.running:
            pass
        with pytest.raises(StoreNotRunning):
            store.submit(_get(new_id()))
    stopper.join(30)
    assert not stopper.is_alive()
    assert all(future.result(timeout=0)["status"] == "available" for future in futures)


def test_stop_is_idempotent_and_start_only_once(db_url: str) -> None:
    store = Store(db_url)
    with pytest.raises(StoreNotRunning):
        store.submit(_get(new_id()))
    store.start()
    with pytest.raises(Exception, match="starts only once"):
        store.start()
    store.stop()
    store.stop()


def test_errors_do_not_show_secrets(store: Store, call: Any) -> None:
    fields = volume_fields(provider_auth="CHAP user s3cret-chap")
    call(_add(fields))

    def plain_insert(session: Session) -> None:
        table = VolumeRecord.__table__
        row = {**fields, "metadata": {}, "created_at": records.utcnow()}
        row["updated_at"] = row["created_at"]
        session.execute(sa.insert(table), row)

    with pytest.raises(sa.exc.IntegrityError) as info:
        call(plain_insert)
    assert "s3cret-chap" not in str(info.value)


def test_a_cancelled_item_is_skipped(store: Store, call: Any, gate: Any) -> None:
    fields = volume_fields()
    with gate():
        future = store.submit(_add(fields))
        assert future.cancel()
    assert call(_load(fields["id"])) is None


async def test_run_awaits_from_asyncio(store: Store) -> None:
    fields = [volume_fields() for _ in range(20)]
    added = await asyncio.gather(*(store.run(_add(f)) for f in fields))
    assert [v["id"] for v in added] == [f["id"] for f in fields]
    got = await store.run(_get(fields[-1]["id"]))
    assert got == added[-1]


def test_errors_reach_the_caller(store: Store, call: Any) -> None:
    with pytest.raises(exception.VolumeNotFound):
        call(_get(new_id()))


def test_sqlite_uses_wal_and_the_synchronous_option(tmp_path: Any) -> None:
    path = tmp_path / "deep" / "dir" / "state.sqlite"
    store = Store(f"sqlite:///{path}", sqlite_synchronous="NORMAL")
    store.start()
    try:
        pragmas = store.submit(
            lambda s: tuple(
                s.execute(sa.text(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout")
            )
        ).result(timeout=30)
    finally:
        store.stop()
    assert os.path.exists(path)
    # Synchronous NORMAL is 1, FULL is 2.
    assert pragmas[0] == "wal"
    assert pragmas[1] == 1
    assert pragmas[2] > 0


def test_from_conf(tmp_path: Any) -> None:
    conf = cfg.ConfigOpts()
    conf.register_opt(cfg.StrOpt("state_path"))
    conf([], project="volworker-test", default_config_files=[])
    conf.set_override("state_path", str(tmp_path / "state"))
    store = Store.from_conf(conf)
    conf.set_override("batch_max", 7, group="database")
    assert Store.from_conf(conf).batch_max == 7
    assert str(store.url) == f"sqlite:///{tmp_path}/state/volworker.sqlite"
    store.start()
    store.stop()
    assert (tmp_path / "state" / "volworker.sqlite").exists()


def test_repr_hides_the_password() -> None:
    store = Store("postgresql+psycopg2://volworker:s3cret@db.example/volworker")
    assert "s3cret" not in repr(store)
    assert "***" in repr(store)


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Store]:
    store = Store(pg_url)
    store.start()
    yield store
    store.stop(timeout=30)


def _pg_call(store: Store, work: Callable[[Session], Any]) -> Any:
    return store.submit(work).result(timeout=30)


def test_lost_connection_fails_the_batch_clearly(pg_store: Store) -> None:
    fields = volume_fields()

    def lose_connection(session: Session) -> None:
        session.execute(sa.text("SELECT pg_terminate_backend(pg_backend_pid())"))

    with Gate(pg_store):
        futures = [pg_store.submit(_add(fields)), pg_store.submit(lose_connection)]
    for future in futures:
        with pytest.raises(StoreConnectionLost, match="next one reconnects"):
            future.result(timeout=30)
    assert _pg_call(pg_store, _load(fields["id"])) is None
    assert _pg_call(pg_store, _add(fields))["id"] == fields["id"]


def test_next_batch_reconnects_after_the_server_dropped_it(pg_store: Store) -> None:
    def backend_pid(session: Session) -> int:
        return int(session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())

    pid = _pg_call(pg_store, backend_pid)
    with pg_admin().connect() as admin:
        admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    fields = volume_fields()
    assert _pg_call(pg_store, _add(fields))["id"] == fields["id"]
    assert _pg_call(pg_store, backend_pid) != pid


def test_in_memory_database_is_shared_with_the_store_thread() -> None:
    store = Store("sqlite://")
    store.start()
    try:
        fields = volume_fields()
        store.submit(_add(fields)).result(timeout=30)
        assert store.submit(_get(fields["id"])).result(timeout=30)["id"] == fields["id"]
    finally:
        store.stop()
