"""How well and how fast the project reads, beside its peers; never imported by the runtime.

``python -m benchmarks`` (lines + pages + targets, ``lines``), ``python -m benchmarks.pages``,
``benchmarks.scale``, ``benchmarks.evaluate`` (the scoring protocol of ``../shared/eval``),
``benchmarks.faithfulness`` and ``benchmarks.speed`` (explanations), ``benchmarks.loadtest``
(the served app under load). Every measuring job runs in a fresh worker (``benchmarks.workers``).
"""
