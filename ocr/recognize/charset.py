"""The recogniser's vocabulary, kept as data (``weights/charset.txt``).

Class 0 is the CTC blank; line ``i`` of the file (1-based) is class ``i``.
The file is read with only newlines stripped, so the space class survives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

BLANK = 0


class Charset:
    def __init__(self, chars: Iterable[str]) -> None:
        self.chars: list[str] = list(chars)
        if any(len(c) != 1 for c in self.chars):
            raise ValueError("every charset entry must be exactly one character")
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("charset has duplicate characters")
        self._index = {c: i + 1 for i, c in enumerate(self.chars)}

    @property
    def num_classes(self) -> int:
        """Characters plus the blank."""
        return len(self.chars) + 1

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, char: str) -> bool:
        return char in self._index

    def char(self, index: int) -> str:
        """The character of class ``index``; blank is the empty string."""
        return "" if index == BLANK else self.chars[index - 1]

    def encode(self, text: str) -> list[int]:
        """Class indices of ``text``; characters outside the charset are dropped."""
        return [self._index[c] for c in text if c in self._index]

    def decode(self, indices: Iterable[int]) -> str:
        return "".join(self.char(i) for i in indices)

    def missing(self, text: str) -> set[str]:
        return {c for c in text if c not in self._index}

    @classmethod
    def load(cls, path: Path | str) -> "Charset":
        text = Path(path).read_text(encoding="utf-8")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return cls(line.rstrip("\r") for line in lines)

    def save(self, path: Path | str) -> None:
        Path(path).write_text("".join(c + "\n" for c in self.chars), encoding="utf-8")
