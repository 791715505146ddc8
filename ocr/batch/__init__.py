"""Batch reading of a whole archive: ``python -m ocr batch INPUT... --out results.jsonl``.

* :mod:`ocr.batch.inputs`: files, folders, globs and archives -> one task per page, each with its input's SHA-256;
* :mod:`ocr.batch.archives`: zip and tar members, listed and read in memory under byte and member limits;
* :mod:`ocr.batch.reader`: the one thing that reads a page (the REST answer for an RGB image);
* :mod:`ocr.batch.runner`: the per-page function every backend runs, and the process pool;
* :mod:`ocr.batch.ray_job`: the same function as a Ray Data job (optional: Ray is imported lazily);
* :mod:`ocr.batch.output`: the JSON-lines writer and what ``--resume`` reads back;
* :mod:`ocr.batch.cli`: the command line.
"""
