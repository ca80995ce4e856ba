"""The plugin author's guide documents every hook of `hookspecs`, with its current signature and
docstring: the hook reference in docs/plugins.md is generated from the contract and must match.

Regenerate it after changing a hook: `.venv/bin/python tests/plugins/test_plugin_docs.py --write`.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

from consentry.plugins import hookspecs

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "plugins.md"
START = "<!-- hook-reference:start (generated from hookspecs.py; do not edit by hand) -->"
END = "<!-- hook-reference:end -->"
BANNER = re.compile(r"^# -- (?P<title>.+?) -+$")
HOOK = re.compile(r"^def (?P<name>\w+)\(")
DOCUMENTED = re.compile(r"^def (?P<name>\w+)\(.*$", re.MULTILINE)


def hooks() -> dict[str, object]:
    return {n: f for n, f in vars(hookspecs).items() if hasattr(f, "consentry_spec")}


def signature(name: str) -> str:
    """`def name(arg: Type, ...) -> Return`, annotations as written in hookspecs.py."""
    sig = inspect.signature(hooks()[name])  # type: ignore[arg-type]
    args = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"def {name}({args}) -> {sig.return_annotation}"


def groups() -> list[tuple[str, list[str]]]:
    """Hooks under their banners, in the order of hookspecs.py."""
    found: list[tuple[str, list[str]]] = []
    for line in inspect.getsource(hookspecs).splitlines():
        if banner := BANNER.match(line):
            found.append((banner["title"], []))
        elif (hook := HOOK.match(line)) and hook["name"] in hooks():
            found[-1][1].append(hook["name"])
    return found


def reference() -> str:
    parts = [START, ""]
    for title, names in groups():
        parts += [f"### {title[0].upper()}{title[1:]}", ""]
        for name in names:
            opts = getattr(hooks()[name], "consentry_spec", {})
            first = " (first result wins)" if opts.get("firstresult") else ""
            doc = inspect.getdoc(hooks()[name]) or ""
            parts += [f"#### `{name}`{first}", "", "```python", signature(name), "```", "", doc, ""]
    return "\n".join([*parts, END])


def documented_section() -> str:
    text = GUIDE.read_text()
    assert START in text and END in text, f"{GUIDE} lacks the hook reference markers"
    return text[text.index(START) : text.index(END) + len(END)]


def test_every_hook_is_in_the_guide() -> None:
    documented = {m["name"] for m in DOCUMENTED.finditer(documented_section())}
    missing = sorted(set(hooks()) - documented)
    assert not missing, f"hooks missing from {GUIDE.name}: {missing} (regenerate: see docstring)"


def test_the_guide_documents_no_hook_that_does_not_exist() -> None:
    documented = {m["name"] for m in DOCUMENTED.finditer(documented_section())}
    gone = sorted(documented - set(hooks()))
    assert not gone, f"{GUIDE.name} documents hooks that are not in hookspecs: {gone}"


def test_every_documented_signature_is_current() -> None:
    documented = {m["name"]: m[0] for m in DOCUMENTED.finditer(documented_section())}
    drifted = {
        name: (documented[name], signature(name))
        for name in hooks()
        if name in documented and documented[name] != signature(name)
    }
    assert not drifted, "\n".join(
        f"{name}: guide says\n  {old}\nhookspecs says\n  {new}"
        for name, (old, new) in drifted.items()
    )


def test_the_reference_matches_hookspecs() -> None:
    """Docstrings and grouping too: the generated section is what the guide holds."""
    assert documented_section() == reference(), "stale hook reference: regenerate (see docstring)"


def test_every_hook_gets_its_own_heading() -> None:
    section = documented_section()
    for name in hooks():
        assert f"#### `{name}`" in section, name


def _write() -> None:
    text = GUIDE.read_text()
    if START in text:
        text = text[: text.index(START)] + reference() + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + reference() + "\n"
    GUIDE.write_text(text)


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    _write()
