"""Regenerate docs/schemes.md and the README's component table from vae_engine.catalogue()
(run after adding or changing a component; a test checks both are up to date)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vae_engine.catalogue import render_markdown, splice_readme  # noqa: E402

DOC = ROOT / "docs" / "schemes.md"
README = ROOT / "README.md"


def main() -> None:
    DOC.write_text(render_markdown())
    README.write_text(splice_readme(README.read_text()))
    print(f"wrote {DOC.relative_to(ROOT)} and the component table of {README.name}")


if __name__ == "__main__":
    main()
