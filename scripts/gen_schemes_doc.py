"""Regenerate docs/schemes.md from vae_engine.catalogue() (run after changing the spec)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vae_engine.catalogue import render_markdown  # noqa: E402

DOC = ROOT / "docs" / "schemes.md"


def main() -> None:
    DOC.write_text(render_markdown())
    print(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
