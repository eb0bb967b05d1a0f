"""The demo collection shipped with newsdesk, and the attribution it must carry."""

from __future__ import annotations

from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent
DEMO_QUESTION = "What did the Secretary General warn about?"
DEMO_ATTRIBUTION = (
    "Demo articles from English Wikinews (https://en.wikinews.org), CC BY 2.5 "
    "(https://creativecommons.org/licenses/by/2.5/), via the GUM corpus (Zeldes 2017); modified."
)


def demo_sources() -> list[Path]:
    return [DEMO_DIR / "000_15af5051488cbce4.txt", DEMO_DIR / "wikinews.jsonl"]


def is_demo_source(path: Path) -> bool:
    return path.resolve().is_relative_to(DEMO_DIR)
