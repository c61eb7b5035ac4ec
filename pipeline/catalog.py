"""The component catalog, generated from the registries (the README's component list). It lives
in pipeline/, the floor whose import registers every component.

    python -m pipeline.catalog            print the Markdown
    python -m pipeline.catalog --write    refresh the section of README.md between the markers
"""
from __future__ import annotations

import argparse
import inspect
from pathlib import Path

import pipeline  # noqa: F401  (registers every component)
from settings.registry import ALL_REGISTRIES
from settings.schema import signature_of

START, END = "<!-- components:start -->", "<!-- components:end -->"
ROOT = Path(__file__).resolve().parents[1]


def _default(value: object) -> str:
    if value is inspect.Parameter.empty:
        return ""
    if isinstance(value, str):
        return f"={value}"
    if value is None:
        return "=null"
    if isinstance(value, bool):
        return "=" + str(value).lower()
    return f"={value!r}"


def catalog_markdown() -> str:
    lines = ["Generated from the registries by `python -m pipeline.catalog --write`; parameters show their",
             "defaults (no default: required). Names in `type:` are exactly these.", ""]
    for registry in ALL_REGISTRIES.values():
        lines += [f"**{registry.kind}**" + (f" (set at run time: {', '.join(registry.runtime)})"
                                            if registry.runtime else ""), "",
                  "| type | what it is | parameters |", "|---|---|---|"]
        for name, entry in registry:
            doc = (inspect.getdoc(entry) or "").split("\n\n")[0].replace("\n", " ").replace("|", "\\|")
            params = ", ".join(f"`{p.name}{_default(p.default)}`" for p in signature_of(entry).params.values()
                               if p.name not in registry.runtime)
            lines.append(f"| `{name}` | {doc} | {params} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def refresh_readme(path: Path = ROOT / "README.md") -> bool:
    """Rewrite the generated section; returns whether the file changed."""
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{catalog_markdown()}{END}{tail}"
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="refresh README.md in place")
    args = parser.parse_args()
    if args.write:
        print("README.md updated" if refresh_readme() else "README.md already up to date")
    else:
        print(catalog_markdown())


if __name__ == "__main__":
    main()
