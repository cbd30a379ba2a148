"""Groups on every driver: natively where the driver declares groups, and
through the worker's generic fallback (member by member) on every driver.

The data tests write bytes to three members through their exports, take a
group snapshot, make a group from it and from the group itself, and read
the same bytes back from each new member.
"""

from __future__ import annotations

import uuid

import pytest

from tests.contract import blockclient
from tests.contract.conftest import Backend, apply
from volworker import exception
from volworker.context import RequestContext
from volworker.driver import Feature
from volworker.driver.groups import GroupMethods, group_methods
from volworker.objects import (
    Group,
    GroupSnapshot,
    GroupType,
    Snapshot,
    Volume,
    VolumeType,
)

MiB = 1024**2
CONSISTENT = GroupType("db", {"consistent_group_snapshot_enabled": "<is> True"})
MULTIATTACH = VolumeType("shared", {"multiattach": "<is> True"})


@pytest.fixture(params=["native", "generic"])
def methods(request: pytest.FixtureRequest, backend: Backend) -> GroupMethods:
    native = request.param == "native"
    if native:
        backend.require(Feature.GROUPS)
    return group_methods(backend.driver, native=native)


def _group(backend: Backend, volumes: list[Volume], **fields: object) -> Group:
    host = backend.driver.configuration.host
    return Group(id=str(uuid.uuid4()), host=host, volumes=volumes, **fields)  # type: ignore[arg-type]


def _snapshots(group: Group, group_snapshot_id: str) -> list[Snapshot]:
    return [
        Snapshot(
            id=str(uuid.uuid4()),
            volume_id=v.id,
            volume=v,
            group_snapshot_id=group_snapshot_id,
        )
        for v in group.volumes
    ]


def _take(methods: GroupMethods, group: Group) -> tuple[GroupSnapshot, list[Snapshot]]:
    group_snapshot = GroupSnapshot(id=str(uuid.uuid4()), group_id=group.id, group=group)
    snapshots = _snapshots(group, group_snapshot.id)
    update, members = methods.create_group_snapshot(
        RequestContext(), group_snapshot, snapshots
    )
    assert (update or {}).get("status") not in ("error",)
    by_id = {m["id"]: m for m in members or ()}
    taken = [
        apply(
            s,
            {k: v for k, v in by_id.get(s.id, {}).items() if k not in ("id", "status")},
        )
        for s in snapshots
    ]
    return group_snapshot, taken


def test_a_group_lives_and_takes_its_members_along(
    backend: Backend, methods: GroupMethods
) -> None:
    ctx = RequestContext()
    members = [backend.create() for _ in range(2)]
    group = _group(backend, [])
    update = methods.create_group(ctx, group)
    assert (update or {}).get("status") != "error"
    methods.update_group(ctx, group, add_volumes=members, remove_volumes=[])
    group = group.replace(volumes=members)
    methods.update_group(ctx, group, add_volumes=[], remove_volumes=[members[1]])
    group = group.replace(volumes=[members[0]])
    methods.delete_group(ctx, group, group.volumes)
    left = backend.harness.backend_objects(backend.driver)
    assert members[0].name not in left
    assert members[1].name in left


def test_group_snapshot_then_a_group_from_it_and_from_the_group(
    data_backend: Backend, methods: GroupMethods
) -> None:
    b, ctx = data_backend, RequestContext()
    members = [b.create() for _ in range(3)]
    for pattern, volume in enumerate(members, start=0x61):
        blockclient.write(b.attach(volume), 0, MiB, pattern)
        b.detach(volume)
    group = _group(b, members)
    group_snapshot, snapshots = _take(methods, group)
    # The members go on changing; the snapshot keeps its moment.
    for volume in members:
        blockclient.write(b.attach(volume), 0, MiB, 0x7F)
        b.detach(volume)

    restored = [b.volume(snapshot_id=s.id) for s in snapshots]
    target = _group(b, restored)
    methods.create_group_from_src(
        ctx, target, restored, group_snapshot=group_snapshot, snapshots=snapshots
    )
    for pattern, volume in enumerate(restored, start=0x61):
        assert blockclient.holds(b.attach(volume), 0, MiB, pattern)

    clones = [b.volume(source_volid=v.id) for v in members]
    methods.create_group_from_src(
        ctx, _group(b, clones), clones, source_group=group, source_vols=members
    )
    for volume in clones:
        assert blockclient.holds(b.attach(volume), 0, MiB, 0x7F)
    methods.delete_group_snapshot(ctx, group_snapshot, snapshots)
    left = b.harness.backend_objects(b.driver)
    assert not {s.name for s in snapshots} & left


def test_a_failed_group_snapshot_leaves_no_member_snapshot(
    backend: Backend, methods: GroupMethods
) -> None:
    members = [backend.create() for _ in range(3)]
    # The last member is gone from the backend: its snapshot must fail.
    backend.driver.delete_volume(members[2])
    group = _group(backend, members)
    group_snapshot = GroupSnapshot(id=str(uuid.uuid4()), group_id=group.id, group=group)
    snapshots = _snapshots(group, group_snapshot.id)
    with pytest.raises(exception.VolworkerError):
        methods.create_group_snapshot(RequestContext(), group_snapshot, snapshots)
    left = backend.harness.backend_objects(backend.driver)
    assert not {s.name for s in snapshots} & left


def test_a_consistent_snapshot_is_refused_while_a_member_is_attached(
    data_backend: Backend,
) -> None:
    """A member that several clients may write to at once (multiattach)
    cannot be held still by any driver here: not over NBD, and not by the
    RBD exclusive lock, which its image goes without."""
    b = data_backend
    b.require(Feature.CONSISTENT_GROUP_SNAPSHOT)
    members = [b.volume(volume_type=MULTIATTACH) for _ in range(2)]
    members = [apply(v, b.driver.create_volume(v)) for v in members]
    b.attach(members[0])
    group = _group(b, members, group_type=CONSISTENT)
    group_snapshot = GroupSnapshot(id=str(uuid.uuid4()), group_id=group.id, group=group)
    with pytest.raises(exception.VolumeIsBusy, match="detached"):
        group_methods(b.driver).create_group_snapshot(
            RequestContext(), group_snapshot, _snapshots(group, group_snapshot.id)
        )
