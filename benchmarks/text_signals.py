"""Joins the text-signal sections into docs/benchmarks/text_signals.md.

Each part has its own benchmark, which writes its figures
(``docs/benchmarks/text_<part>.json``) and its section
(``docs/benchmarks/text_signals_<part>.md``); this page puts the sections in
one place, in the order of the issue, with the commands that produce them.

    .venv/bin/python -m benchmarks.text_signals
"""
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
PARTS = (
    ("sentiment", ".venv/bin/python benchmarks/text_sentiment.py --max-length 64 "
                  "--labels graded binary"),
    ("feedback", ".venv/bin/python -m benchmarks.text_feedback --ranking"),
    ("interests", ".venv/bin/python benchmarks/text_interests.py"),
    ("intent", ".venv/bin/python benchmarks/text_intent.py --fractions 0.2 --seeds 0 1 2"),
)
HEADER = """# Text signals: people's own words in profiles

What the words users write (reviews, comments, request-time queries) add to
a profile, measured on real text with the bundled all-MiniLM-L6-v2 (the only
BERT-family encoder shipped in a package here; English). Every section names
its protocol and the command that reproduces it; this page is assembled from
the sections by `.venv/bin/python -m benchmarks.text_signals`.

| part | command |
|---|---|
"""


def main():
    present = [(name, command) for name, command in PARTS
               if (DOCS / f"text_signals_{name}.md").exists()]
    missing = [name for name, _ in PARTS if name not in dict(present)]
    page = HEADER + "".join(f"| {name} | `{command}` |\n" for name, command in present)
    if missing:
        page += f"\nNot measured yet: {', '.join(missing)}.\n"
    for name, _ in present:
        section = (DOCS / f"text_signals_{name}.md").read_text().strip()
        # Each section's top heading becomes a "## " here, whatever its own level.
        lines = section.splitlines()
        top = min(len(line) - len(line.lstrip("#")) for line in lines if line.startswith("#"))
        section = "\n".join("#" * (2 - top) + line if line.startswith("#") and top < 2
                            else line[top - 2:] if line.startswith("#") else line
                            for line in lines)
        page += "\n" + section + "\n"
    (DOCS / "text_signals.md").write_text(page)
    print(f"wrote {DOCS / 'text_signals.md'} ({len(present)} sections)")


if __name__ == "__main__":
    main()
