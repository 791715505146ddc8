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
import time
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, AsyncIterator

import anyio

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
