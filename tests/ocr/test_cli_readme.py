"""The README's client snippets say what the code returns: the gradio_client example's ``out[11]``."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINE = ROOT / "examples" / "line_zh.png"


class _Names:
    """A stand-in for the UI's components: each is its own name, so a handler's answer reads by name."""

    def __getattr__(self, name: str) -> str:
        return name


def _readme_message_line() -> str:
    """The ``message = ...`` line of the README's gradio_client snippet (it reads ``status = out[11]``)."""
    snippet = (ROOT / "README.md").read_text(encoding="utf-8").split("from gradio_client import", 1)[1]
    assert re.search(r"status = .*out\[11\]", snippet.split("```", 1)[0]), "the snippet names out[11] status"
    return next(line for line in snippet.splitlines() if line.startswith("message = "))


def test_readme_gradio_client_message_matches_the_handler(service, tmp_path):
    """``out[11]`` is the status box's update ({"visible", "value", "__type__"}), not a plain string: the
    README's line gives "" for an image read and the bilingual message for a bad file."""
    from demo.handlers import UISettings, read_image

    settings = UISettings("auto", [], 7, 2.0, 11, 2, 0)
    line = _readme_message_line()
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not an image at all" * 10)
    for image, expected in ((LINE, ""), (bad, "Please choose another image file")):
        status = read_image(service, _Names(), str(image), settings)["status"]
        assert set(status) >= {"visible", "value", "__type__"}
        scope = {"status": status}
        exec(line, scope)  # noqa: S102 - the README's own line
        assert expected in scope["message"] and (expected or scope["message"] == "")
