"""Sweeping Gradio's file cache: uploads and output pictures older than a TTL are deleted.

Gradio writes about 8 files per distinct image read (the upload, the annotated page, the
preprocessing steps, the downloads ...). Its own ``delete_cache`` sweep is no help under load
(Gradio 6.31): it iterates its live file sets while events add to them, so the first collision
raises "Set changed size during iteration" inside its background task, which then stops for good
without a word, and every later file stays (RELIABILITY.md). This sweep copies each set before
walking it, survives any error, removes the emptied per-file folders, and, like Gradio's,
deletes the app's files when the server stops.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import anyio
import numpy as np
from PIL import Image

from ocr.settings import Settings

log = logging.getLogger("demo.cache")


def cache_ttl(settings: Settings | None = None) -> int | None:
    """``OCR_GRADIO_CACHE_TTL`` seconds (3600); 0 keeps files for ever (Gradio's default)."""
    age = (settings or Settings.from_env()).gradio_cache_ttl
    return age if age > 0 else None


def sweep(blocks: Any, age: float, root: Path | None = None, now: float | None = None) -> int:
    """Delete the files of ``blocks``' temp-file sets older than ``age`` s; return how many went.

    Files Gradio must keep (examples, default values: ``keep_in_cache``) stay. With ``root`` (the
    cache folder), its sub-folders that have been empty for ``age`` s are removed too.
    """
    now = time.time() if now is None else now
    keep: set[str] = set()
    for block in list(blocks.blocks.values()):
        keep.update(getattr(block, "keep_in_cache", None) or ())
    removed = 0
    for files in list(blocks.temp_file_sets):
        for path in list(files):  # a copy: events add files while this runs
            if path in keep:
                continue
            try:
                if now - os.lstat(path).st_ctime <= age:
                    continue
                os.remove(path)
                removed += 1
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not delete cached file %s (%s)", path, exc)
                continue
            files.discard(path)
    if root is not None:
        remove_empty_folders(root, age, now)
    return removed


def remove_empty_folders(root: Path, age: float, now: float) -> int:
    """Remove the direct sub-folders of ``root`` that are empty and unchanged for ``age`` s.

    Gradio names them by content hash; one that has stayed empty that long is not being written.
    """
    count = 0
    try:
        entries = list(os.scandir(root))
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False) and now - entry.stat(follow_symlinks=False).st_mtime > age:
                os.rmdir(entry.path)  # fails (and is skipped) unless empty
                count += 1
        except OSError:
            continue
    return count


async def sweep_forever(blocks: Any, age: float, every: float, root: Path | None) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            removed = await anyio.to_thread.run_sync(sweep, blocks, age, root)
            if removed:
                log.info("deleted %d cached files older than %g s", removed, age)
        except Exception:  # noqa: BLE001 - one failed sweep must not stop the next ones
            log.exception("cache sweep failed; trying again in %g s", every)


def install_sweeper(app: Any, blocks: Any, age: float, root: Path | None = None) -> None:
    """Run :func:`sweep` every ``age / 4`` s while ``app`` (the FastAPI app with Gradio mounted) runs."""
    previous = app.router.lifespan_context
    every = max(0.1, age / 4)

    @asynccontextmanager
    async def lifespan(the_app: Any) -> AsyncIterator[Any]:
        async with previous(the_app) as state:
            task = asyncio.create_task(sweep_forever(blocks, age, every, root))
            try:
                yield state
            finally:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
                await anyio.to_thread.run_sync(sweep, blocks, -1.0, root)  # everything but the examples

    app.router.lifespan_context = lifespan


class ViewCache:
    """What the UI shows of a page result, rendered once per result and reused while it is kept.

    The pipeline's LRU hands back the same ``PageResult`` object for a repeated image and
    settings, so a view is keyed by that object (held here, so its ``id`` cannot be reused) and a
    name. Pictures are written once as files (JPEG for pages, PNG for small line images): Gradio
    then only copies a file instead of encoding an array on every event. Bounded in entries; an
    evicted entry's files are deleted.
    """

    def __init__(self, folder: Path, entries: int = 24) -> None:
        self.folder = Path(folder)
        self.entries = max(1, entries)
        self._items: OrderedDict[int, tuple[Any, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, page: Any, name: str, build: Callable[[], Any]) -> Any:
        """The view ``name`` of ``page``, built by ``build()`` the first time."""
        with self._lock:
            entry = self._items.get(id(page))
            if entry is not None and entry[0] is page:
                self._items.move_to_end(id(page))
                if name in entry[1]:
                    return entry[1][name]
        value = build()
        with self._lock:
            entry = self._items.get(id(page))
            if entry is None or entry[0] is not page:
                entry = (page, {})
                self._items[id(page)] = entry
            entry[1][name] = value
            while len(self._items) > self.entries:
                _, (_, views) = self._items.popitem(last=False)
                _delete_files(views.values())
        return value

    def image_file(self, page: Any, name: str, build: Callable[[], Any], fmt: str = "jpeg") -> str | None:
        """The picture ``build()`` makes (an RGB array or None), written once as a file; its path."""
        def write() -> str | None:
            array = build()
            if array is None:
                return None
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{name}-{uuid.uuid4().hex[:12]}.{'jpg' if fmt == 'jpeg' else fmt}"
            options = {"quality": 90} if fmt == "jpeg" else {"compress_level": 1}
            Image.fromarray(np.ascontiguousarray(array)).save(path, format=fmt.upper(), **options)
            return str(path)

        return self.get(page, name, write)

    def clear(self) -> None:
        with self._lock:
            items = list(self._items.values())
            self._items.clear()
        for _, views in items:
            _delete_files(views.values())


def _delete_files(values: Any) -> None:
    for value in values:
        for path in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(path, str) and path.startswith(tempfile.gettempdir()):
                with suppress(OSError):
                    os.remove(path)
