"""Load and soak runs against the real app (REST API + Gradio UI) on 127.0.0.1.

    python -m benchmarks.loadtest                       # 32 clients, 500 requests, REST /api/v1/ocr + Gradio /ocr
    python -m benchmarks.loadtest --soak 2000           # 2,000 requests in a row: RSS, fds, temp files, model hooks
    python -m benchmarks.loadtest --url http://127.0.0.1:7860 --clients 4 --requests 40   # an app already running

The app runs as a child process on a free loopback port with its own TMPDIR and
GRADIO_TEMP_DIR (so its temp files can be counted) and is always killed at the end.
Nothing here imports gradio: the Gradio endpoint is driven over its HTTP API.
"""
