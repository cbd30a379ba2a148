"""copy_volume_to_image redone after a crash that came after its upload
finds its own image and finishes; another request for that image id is
refused, and the image is never replaced."""

from __future__ import annotations

import functools
import pathlib
import uuid
from typing import Any

import pytest

from tests.unit.manager.conftest import (
    journaled,
    operation,
    record,
    request,
    sent,
    stored_volume,
)
from volworker import exception
from volworker.context import RequestContext
from volworker.image import ImageService
from volworker.manager import volumes
from volworker.manager.runtime import Runtime
from volworker.objects import Volume
from volworker.state import operations
from volworker_drivers.fake.driver import FakeDriver


@pytest.fixture
def uploads(
    tmp_path: pathlib.Path, driver: FakeDriver, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """The fake driver's copy_volume_to_image, storing the volume's id as
    the image's data; the ids it stored, in order."""
    stored: list[str] = []

    def copy(
        context: RequestContext,
        volume: Volume,
        image_service: ImageService,
        image_meta: dict[str, Any],
    ) -> None:
        data = tmp_path / f"data-{uuid.uuid4().hex}"
        data.write_text(volume.id)
        image_service.upload(context, image_meta, str(data))
        stored.append(image_meta["id"])

    monkeypatch.setattr(driver, "copy_volume_to_image", copy)
    return stored


async def test_a_redo_after_the_upload_finishes_with_the_image_it_made(
    runtime: Runtime, driver: FakeDriver, uploads: list[str]
) -> None:
    volume = await stored_volume(runtime, driver=driver)
    image_id = str(uuid.uuid4())
    copy = request("copy_volume_to_image", volume=volume, image_meta={"id": image_id})
    seq = await journaled(runtime, copy)
    await volumes.copy_volume_to_image(operation(runtime, copy, seq))
    assert uploads == [image_id]

    # A crash after the upload, before the journal heard of it: redone.
    await runtime.db(
        functools.partial(
            operations.set_state, seq=seq, state="running", owner=runtime.owner
        )
    )
    await volumes.copy_volume_to_image(operation(runtime, copy, seq))
    assert uploads == [image_id], "the redo copied the volume a second time"
    assert (await record(runtime, "volume", volume["id"]) or {})["status"] == (
        "available"
    )
    ends = sent(runtime).events(volume["id"])
    assert ends.count("volume.copy_to_image.end") == 2

    # Anyone else asking for that image id is refused; the image stays.
    again = request("copy_volume_to_image", volume=volume, image_meta={"id": image_id})
    with pytest.raises(exception.ImageExists):
        await volumes.copy_volume_to_image(
            operation(runtime, again, await journaled(runtime, again))
        )
    assert uploads == [image_id]
    assert runtime.images.show(RequestContext(), image_id)["size"] == len(volume["id"])
