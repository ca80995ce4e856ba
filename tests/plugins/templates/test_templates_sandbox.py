"""The templates sandbox without a database: escaping, inert data access, no files, every limit,
the strict check with names and lines, and filters (own and contributed by another plugin)."""

from __future__ import annotations

import time
import types
from collections.abc import Callable
from typing import Any
from uuid import uuid4

import consentry_templates
import pytest
from consentry_templates import sandbox
from consentry_templates.filters import FILTERS
from consentry_templates.render import Compiled, RenderFailed, compile_template, render
from consentry_templates.sandbox import Sandbox
from consentry_templates.variables import Vocabulary, render_data

from consentry.domain.errors import Invalid
from consentry.host.manager import Plugins
from consentry.plugins import hookimpl
from consentry.plugins.types import SubjectView
from consentry.policy.loader import load_policy
from consentry.settings import Settings

POLICY = load_policy(Settings().policy_path)
VOCABULARY = Vocabulary.of(POLICY, "templates.render")
SANDBOX = Sandbox.build(FILTERS)
COMPANY = {"name": "Example & Co", "contact": "privacy@example.com", "policy_url": "https://x"}


def compiled(body: str, *, kind: str = "html", subject: str = "", strict: bool = False) -> Compiled:
    return compile_template(
        SANDBOX, VOCABULARY, kind=kind, body=body, subject=subject, strict=strict
    )


def run(body: str, customer: dict[str, Any] | None = None, **kw: Any) -> str:
    """Render with the data a view of `customer` gives (as the plugin does)."""
    view = SubjectView(
        uuid4(), "templates.render", ("personalization",), "EU", customer or {}, {}, frozenset()
    )
    return str(render(compiled(body, **kw), render_data(view, COMPANY)).body)


def fails(body: str, customer: dict[str, Any] | None = None) -> str:
    started = time.monotonic()
    with pytest.raises(RenderFailed) as failed:
        run(body, customer)
    assert time.monotonic() - started < sandbox.RENDER_SECONDS + 0.5  # stopped, promptly
    return str(failed.value)


# -- the policy example this plugin relies on ---------------------------------------------------


def test_personalization_covers_location_but_not_financial_or_contact() -> None:
    """The example of a field templates.render never sees must be real: `monthly_spend`
    (financial) and identities (contact) are outside personalization; `country` is inside."""
    assert POLICY.gates["templates.render"] == ("personalization",)
    assert POLICY.attributes["monthly_spend"] == "financial"
    assert POLICY.attributes["country"] == "location"
    assert "financial" not in VOCABULARY.categories and "contact" not in VOCABULARY.categories
    assert "country" in VOCABULARY.attributes and "monthly_spend" not in VOCABULARY.attributes
    assert not VOCABULARY.identities


# -- rendering ----------------------------------------------------------------------------------


def test_variables_fallbacks_company_and_own_filters() -> None:
    body = (
        "Hi {{ customer.first_name | default: 'there' }}, your {{ customer.plan | upcase }}"
        " plan costs {{ 1234.5 | money: 'EUR' }}. {{ customer.last_name | initial }}"
        " -- {{ company.name }}"
    )
    assert run(body, {"first_name": "Ada", "plan": "pro", "last_name": "lovelace"}) == (
        "Hi Ada, your PRO plan costs 1,234.50 EUR. L. -- Example &amp; Co"
    )
    assert run(body, {}).startswith("Hi there, your  plan costs")


def test_html_autoescapes_values_and_text_does_not() -> None:
    evil = {"first_name": "<script>alert('x')</script>"}
    html = run("<p>{{ customer.first_name }}</p>", evil)
    assert html == "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</p>"
    assert run("{{ customer.first_name }}", evil, kind="text") == evil["first_name"]


def test_safe_cannot_unescape_customer_data() -> None:
    with pytest.raises(Invalid, match="unknown filter 'safe'"):
        compiled("{{ customer.first_name | safe }}")


def test_the_subject_line_is_text_on_one_line() -> None:
    result = render(
        compiled("x", subject="Hello {{ customer.first_name }} & co"),
        {"customer": {"first_name": "Ada\r\nBcc: evil@example.com"}, "company": COMPANY},
    )
    assert result.subject == "Hello Ada Bcc: evil@example.com & co"


def test_python_objects_are_out_of_reach() -> None:
    customer = {"first_name": "Ada", "_secret": "s", "plan": "pro", "nested": {"_k": 1}}
    body = (
        "[{{ customer.__class__ }}][{{ customer['__class__'] }}][{{ customer._secret }}]"
        "[{{ customer.first_name.__class__.__mro__ }}][{{ customer.items }}]"
        "[{{ company.__init__.__globals__ }}][{{ customer.first_name.upper }}]"
        "[{{ customer.nested._k }}][{% for i in (1..2) %}{{ forloop.__class__ }}{% endfor %}]"
    )
    assert run(body, customer) == "[][][][][][][][][]"


def test_no_files_no_partials() -> None:
    for source in ("{% include '/etc/passwd' %}", "{% render 'secrets' %}"):
        with pytest.raises(Invalid, match="unexpected tag") as invalid:
            compiled(source)
        assert invalid.value.field == "body"


def test_syntax_errors_and_unknown_filters_name_the_line() -> None:
    with pytest.raises(Invalid, match="line 2") as invalid:
        compiled("ok\n{% if %}")
    assert invalid.value.field == "body"
    with pytest.raises(Invalid, match=r"unknown filter 'nope' \(line 3\)"):
        compiled("a\nb\n{{ customer.plan | nope }}")
    with pytest.raises(Invalid) as invalid:
        compiled("fine", subject="{{ customer.plan | nope }}")
    assert invalid.value.field == "subject"


# -- limits --------------------------------------------------------------------------------------


def test_a_huge_loop_is_stopped() -> None:
    assert "loop iteration limit reached" in fails("{% for i in (1..100000000) %}{% endfor %}")
    nested = "{% for i in (1..1000) %}{% for j in (1..1000) %}{% endfor %}{% endfor %}"
    assert "loop iteration limit reached" in fails(nested)
    assert "loop iteration limit reached" in fails(
        "{% tablerow i in (1..100000000) %}{% endtablerow %}"
    )


def test_many_loops_in_a_row_are_stopped_in_total() -> None:
    each = "{% for i in (1..9000) %}{% endfor %}"
    assert run(each * 5) == ""
    assert "50,000 iterations in all loops" in fails(each * 6)


def test_huge_output_is_stopped() -> None:
    body = "{% for i in (1..9000) %}" + "x" * 100 + "{{ i }}{% endfor %}"
    assert "output stream limit reached" in fails(body)
    captured = (
        "{% capture y %}{% for i in (1..9000) %}" + "y" * 100 + "{% endfor %}{% endcapture %}"
    )
    assert "output stream limit reached" in fails(captured)


def test_growing_variables_are_stopped() -> None:
    body = "{% assign x = 'ab' %}{% for i in (1..60) %}{% assign x = x | append: x %}{% endfor %}"
    assert "local namespace limit reached" in fails(body)


def test_filters_refuse_huge_inputs_and_outputs() -> None:
    assert "a sequence of 100,000,000 items" in fails("{{ (1..100000000) | join: ',' }}")
    assert "sort" in fails("{{ (1..100000000) | sort | first }}")
    growing = (
        "{% assign x = 'aaaaaaaaaa' %}{% for i in (1..14) %}{% assign x = x | append: x %}"
        "{% endfor %}{{ x | replace: 'a', x }}"
    )
    assert "filter 'replace' would make more than" in fails(growing)
    squares = "{% assign n = 99999999999 %}{{ n | times: n | times: n | times: n | times: n }}"
    assert "integer of more than" in fails(squares)


def test_slow_renders_hit_the_deadline() -> None:
    body = "{% for i in (1..9999) %}{{ (1..9999) | join | size }}{% endfor %}"
    assert "rendering took longer than" in fails(body)


def test_errors_name_the_line() -> None:
    assert fails("ok\nok\n{% for i in (1..100000000) %}{% endfor %}").startswith("line 3:")


# -- strict mode --------------------------------------------------------------------------------


def test_strict_reports_each_unknown_variable_with_its_line() -> None:
    source = (
        "Hi {{ customer.first_name }} from {{ customer.country }}\n"  # both allowed
        "You spend {{ customer.monthly_spend }}\n"  # financial: never seen
        "{{ contact.email }} {{ foo }}\n"  # contact: never seen; unknown root
        "{{ customer.favourite_colour }} {{ customer[company.name] }} {{ customer._x }}"
    )
    with pytest.raises(Invalid) as invalid:
        compiled(source, strict=True)
    assert invalid.value.field == "body"
    detail = invalid.value.detail
    assert "customer.monthly_spend (line 2): category 'financial'" in detail
    assert "contact.email (line 3): category 'contact'" in detail
    assert "foo (line 3): unknown variable" in detail
    assert "customer.favourite_colour (line 4): not an attribute declared" in detail
    assert "customer[company.name] (line 4): a computed lookup" in detail
    assert "customer._x (line 4): private names" in detail
    assert "customer.first_name (line" not in detail and "customer.country (line" not in detail
    # lax mode saves the same template
    assert compiled(source, strict=False).fields >= {"customer.monthly_spend", "contact.email"}


def test_strict_accepts_what_the_capability_can_see_and_template_locals() -> None:
    source = (
        "{% assign name = customer.first_name | default: 'there' %}{{ name }}\n"
        "{% for p in customer.plan %}{{ forloop.index }}{{ p }}{% endfor %}\n"
        "{% capture sig %}{{ company.name }} {{ company.policy_url }}{% endcapture %}{{ sig }}"
    )
    compiled(source, strict=True, subject="For {{ customer.city | default: 'you' }}")


def test_strict_checks_the_subject_too() -> None:
    with pytest.raises(Invalid, match=r"customer.monthly_spend \(line 1\)") as invalid:
        compiled("fine", subject="{{ customer.monthly_spend }}", strict=True)
    assert invalid.value.field == "subject"


# -- filters other plugins contribute -------------------------------------------------------


def _filters_plugin(filters: dict[str, Callable[..., Any]]) -> types.ModuleType:
    module = types.ModuleType("test_templates_filters_plugin")

    def register_template_filters(register: Callable[[str, Callable[..., Any]], None]) -> None:
        for name, func in filters.items():
            register(name, func)

    module.register_template_filters = hookimpl(register_template_filters)  # type: ignore[attr-defined]
    return module


def test_filters_from_other_plugins_are_usable_and_guarded() -> None:
    other = _filters_plugin(
        {"shout": lambda v: f"{v}!!", "upcase": lambda v: "hijacked", "many": lambda v: "x" * 10**7}
    )
    plugins = Plugins.of(("templates", consentry_templates), ("other", other))
    box = Sandbox.build({name: f for name, (_, f) in plugins.registry.filters.items()})
    assert {"money", "initial", "shout"} <= box.filter_names()
    made = compile_template(
        box,
        VOCABULARY,
        kind="html",
        body="{{ customer.first_name | shout }} {{ 'a' | upcase }}",
        subject="",
        strict=True,
    )
    assert render(made, {"customer": {"first_name": "<Ada>"}}).body == "&lt;Ada&gt;!! A"
    too_big = compile_template(
        box, VOCABULARY, kind="text", body="{{ 1 | many }}", subject="", strict=True
    )
    with pytest.raises(RenderFailed, match="filter 'many' refused text of 10,000,000"):
        render(too_big, {})
