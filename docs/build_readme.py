"""Copies each vendor's configuration section from docs/vendors/<type>.md into README.md.

Why generated: the vendor documents are the source of truth for their keys; the README must carry
the full config reference. Run `python docs/build_readme.py` after changing a vendor document.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["flexdeploy", "harness", "herzum", "greenhouse", "approval_path"]
START, END = "<!-- vendor-config -->", "<!-- /vendor-config -->"


def section(text: str, title: str) -> str:
    match = re.search(rf"^## {title}\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    return match.group(1).strip() if match else ""


def main() -> None:
    parts = []
    for name in ORDER:
        doc = ROOT / "docs" / "vendors" / f"{name}.md"
        if not doc.exists():
            continue
        text = doc.read_text(encoding="utf-8")
        heading = text.splitlines()[0].lstrip("# ").strip()
        config = section(text, "Configuration")
        config = re.sub(r"^### ", "#### ", config, flags=re.M)
        parts.append(
            f'### {heading}: `type = "{name}"`\n\n{config}\n\nMore: [docs/vendors/{name}.md](docs/vendors/{name}.md).'
        )
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    readme.write_text(f"{before}{START}\n\n" + "\n\n".join(parts) + f"\n\n{END}{after}", encoding="utf-8")


if __name__ == "__main__":
    main()
