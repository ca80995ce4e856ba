"""Policy loading: the default policy, and every kind of mistake reported with its line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentry.domain.deadlines import BUILTIN_REGULATIONS, Period, Regulation, Unit
from consentry.domain.purposes import ConsentModel, LegalBasis, Policy
from consentry.policy.loader import PolicyError, PolicyIssue, load_policy, parse_policy

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POLICY = ROOT / "policies" / "default.yaml"
REQUIRED_PURPOSES = {
    "essential",
    "personalization",
    "marketing_email",
    "product_updates",
    "analytics",
    "sale_or_share",
}

# A small valid policy; the broken variants below change it line by line (1-based numbers).
MINIMAL = """\
controller:
  name: Acme
  contact: privacy@acme.test
  policy_url: https://acme.test/privacy
languages: [en, ja]
categories:
  contact: {sensitive: true}
  profile: {sensitive: false, description: Plan and company}
identities:
  email: contact
attributes:
  plan: profile
unknown_attributes: reject
channels: [email, sms]
purposes:
  essential:
    title: {en: Essential, ja: 必須}
    legal_basis: contract
    categories: [contact]
    channels: all
    notices:
      - version: "1"
        published: "2025-01-01"
        text: {en: We send receipts., ja: 領収書を送ります。}
  marketing_email:
    title: {en: Marketing, ja: マーケティング}
    legal_basis: consent
    categories: [contact, profile]
    channels: [email]
    double_opt_in: true
    expires_after_days: 365
    notices:
      - version: "1"
        text: {en: News by email., ja: メールでお知らせします。}
regions:
  EU: {model: opt_in, regulation: GDPR}
  US-CA: {model: opt_out, regulation: CCPA, honor_gpc: true}
default_region: EU
topics:
  newsletter:
    purpose: marketing_email
    title: {en: Newsletter, ja: ニュースレター}
gates:
  segments.membership: [marketing_email]
retention:
  keep_ledger_after_erasure: true
  events_days: 365
double_opt_in_ttl_hours: 48
"""


def replace(first: int, *lines: str, last: int | None = None) -> str:
    """MINIMAL with lines first..last (1-based, inclusive) replaced by `lines`."""
    src = MINIMAL.splitlines()
    src[first - 1 : last or first] = lines
    return "\n".join(src) + "\n"


def insert(after: int, *lines: str) -> str:
    """MINIMAL with `lines` inserted after line `after`."""
    src = MINIMAL.splitlines()
    src[after:after] = lines
    return "\n".join(src) + "\n"


def with_regulations(*lines: str) -> str:
    """MINIMAL with a `regulations:` section (line 49) whose entries start on line 50."""
    return insert(48, "regulations:", *lines)


GDPR_CCPA = ("  GDPR: {respond: 1 month}", "  CCPA: {respond: 45 days}")


def issues_of(text: str) -> list[PolicyIssue]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text.encode(), "p.yaml")
    return caught.value.issues


BROKEN = [
    ("unknown top-level key", insert(48, "colour: blue"), 49, "unknown key 'colour'"),
    ("missing required key", replace(38, ""), 1, "missing required key 'default_region'"),
    ("list expected", replace(5, "languages: en"), 5, "expected a list, got a string"),
    ("mapping expected", replace(45, "retention: forever", last=47), 45, "expected a mapping"),
    ("unknown enum lists allowed", replace(18, "    legal_basis: contrakt"), 18,
     "(did you mean 'contract'?); allowed: consent, contract, legal_obligation"),
    ("unknown consent model", replace(36, "  EU: {model: opt-in, regulation: GDPR}"), 36,
     "unknown consent model 'opt-in'"),
    ("purpose uses unknown category", replace(28, "    categories: [contact, profil]"), 28,
     "unknown category 'profil'"),
    ("purpose uses unknown channel", replace(29, "    channels: [fax]"), 29,
     "unknown channel 'fax'"),
    ("region_defaults names unknown region", insert(31, "    region_defaults: {MARS: true}"), 32,
     "unknown region 'MARS'"),
    ("topic names unknown purpose", replace(41, "    purpose: newsletters"), 41,
     "unknown purpose 'newsletters'"),
    ("gate names unknown purpose", replace(44, "  segments.membership: [marketing]"), 44,
     "unknown purpose 'marketing'"),
    ("gate without purposes", replace(44, "  segments.membership: []"), 44,
     "at least one purpose"),
    ("default_region not declared", replace(38, "default_region: JP"), 38,
     "unknown region 'JP'"),
    ("missing language text", replace(34, "        text: {en: News by email.}"), 34,
     "missing the 'ja' text"),
    ("undeclared language", replace(42, "    title: {en: News, ja: ニュース, fr: Nouvelles}"), 42,
     "language 'fr' is not declared"),
    ("empty text", replace(17, "    title: {en: Essential, ja: ''}"), 17,
     "expected a non-empty string"),
    ("duplicate notice version", insert(34, '      - version: "1"', "        text: {en: a, ja: b}"),
     35, "duplicate notice version '1' (first on line 33)"),
    ("empty notices", replace(32, "    notices: []", last=34), 32,
     "at least one notice version is required"),
    ("notices out of order",
     insert(24, '      - version: "0"', '        published: "2024-01-01"',
            "        text: {en: a, ja: b}"),
     25, "oldest first"),
    ("bad date", replace(23, '        published: "2025-13-01"'), 23, "YYYY-MM-DD"),
    ("identity in a non-sensitive category", replace(10, "  email: profile"), 10,
     "'profile' is not sensitive"),
    ("attribute that is an identity", insert(12, "  email: contact"), 13, "is an identity"),
    ("unknown_attributes unknown category", replace(13, "unknown_attributes: misc"), 13,
     "unknown category 'misc'"),
    ("integer expected", replace(31, "    expires_after_days: soon"), 31, "expected an integer"),
    ("integer below minimum", replace(48, "double_opt_in_ttl_hours: 0"), 48, "at least 1"),
    ("boolean expected", replace(30, "    double_opt_in: maybe"), 30, "expected true or false"),
    ("consent-only setting on a contract purpose", insert(18, "    double_opt_in: true"), 19,
     "only a consent purpose can set double_opt_in"),
    ("gpc on a contract purpose", insert(18, "    gpc_opt_out: true"), 19,
     "gpc_opt_out needs consent or legitimate_interest"),
    ("double opt-in without a channel", replace(29, "    channels: []"), 30,
     "double_opt_in needs a channel"),
    ("unknown purpose key with hint", insert(18, "    legal_bases: consent"), 19,
     "unknown key 'legal_bases' (did you mean 'legal_basis'?)"),
    ("missing purpose key at the purpose", replace(19, ""), 16,
     "missing required key 'categories'"),
    ("invalid purpose name", replace(25, "  Marketing-Email:"), 25, "invalid purpose"),
    ("http url", replace(4, "  policy_url: acme.test/privacy"), 4, "http(s) URL"),
    ("duplicate key", insert(12, "  plan: contact"), 13, "duplicate key 'plan' (first on line 12)"),
    ("YAML syntax error", replace(26, "    title: {en: Marketing, ja: マーケティング"), 27,
     "YAML syntax error"),
    ("unsupported tag", replace(2, "  name: !!binary QWNtZQ=="), 2, "unsupported YAML tag"),
    ("merge keys", insert(36, "  <<: {JP: {model: opt_in, regulation: APPI}}"), 37,
     "merge keys (<<) are not supported"),
    ("region names an undeclared regulation", with_regulations(GDPR_CCPA[0]), 37,
     "regulation 'CCPA' is not declared; declare it under regulations (declared: GDPR)"),
    ("bad period", with_regulations("  GDPR: {respond: 1 fortnight}", GDPR_CCPA[1]), 50,
     "invalid period '1 fortnight'"),
    ("period out of range", with_regulations(GDPR_CCPA[0], "  CCPA: {respond: 400 days}"), 51,
     "the number must be 1 to 366"),
    ("period not a string", with_regulations(GDPR_CCPA[0], "  CCPA: {respond: 45}"), 51,
     "invalid period '45'"),
    ("unknown regulation key",
     with_regulations("  GDPR: {respond: 1 month, extend: 2 months}", GDPR_CCPA[1]), 50,
     "unknown key 'extend' (did you mean 'extension'?)"),
    ("regulation without respond", with_regulations("  GDPR: {extension: 2 months}",
     GDPR_CCPA[1]), 50, "missing required key 'respond'"),
    ("bad holiday", with_regulations(*GDPR_CCPA, "  APPI:", "    respond: 14 days",
     "    holidays: [2026-12-25, 2026-02-30]"), 54, "expected a date as YYYY-MM-DD"),
    ("roll_forward not a boolean",
     with_regulations("  GDPR: {respond: 1 month, roll_forward: sometimes}", GDPR_CCPA[1]), 50,
     "expected true or false"),
    ("regulations not a mapping", insert(48, "regulations: [GDPR, CCPA]"), 49,
     "expected a mapping, got a list"),
    ("invalid regulation name", with_regulations(*GDPR_CCPA, "  'EU GDPR': {respond: 1 month}"),
     52, "invalid regulation 'EU GDPR'"),
    ("empty file", "", 1, "the file is empty"),
    ("not a mapping", "- a\n- b\n", 1, "expected a mapping, got a list"),
    ("not UTF-8", MINIMAL.replace("Acme\n", "Acme\udcff\n", 1), 2, "must be UTF-8"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "line", "message"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_broken_policy_is_reported_at_its_line(text: str, line: int, message: str) -> None:
    """Each broken variant raises PolicyError naming the offending line and the problem."""
    data = text.encode("utf-8", "surrogateescape")
    with pytest.raises(PolicyError) as caught:
        parse_policy(data, "p.yaml")
    found = [i for i in caught.value.issues if message in i.message]
    assert found, f"no issue contains {message!r}:\n{caught.value}"
    assert found[0].line == line, str(caught.value)
    assert found[0].file == "p.yaml"


def test_minimal_policy_loads_into_typed_values() -> None:
    """A valid policy becomes a Policy with enums, expanded `all` channels and defaults applied."""
    policy = parse_policy(MINIMAL.encode(), "p.yaml")
    assert policy.unknown_attributes is None  # `reject`
    assert policy.purposes["essential"].channels == ("email", "sms")
    assert policy.purposes["essential"].legal_basis is LegalBasis.CONTRACT
    assert policy.purposes["marketing_email"].double_opt_in
    assert policy.purposes["marketing_email"].expires_after_days == 365
    assert policy.regions["US-CA"].model is ConsentModel.OPT_OUT
    assert policy.regions["US-CA"].honor_gpc
    assert policy.gates == {"segments.membership": ("marketing_email",)}
    assert policy.double_opt_in_ttl_hours == 48
    assert policy.retention.events_days == 365
    assert policy.category_of("unheard_of") is None and policy.is_sensitive("unheard_of")


def test_optional_sections_take_fail_closed_defaults() -> None:
    """Omitted optional sections mean: reject unknown attributes, keep the ledger, TTL 72 hours."""
    text = replace(9, "", last=13).replace("retention:\n  keep_ledger_after_erasure: true\n", "")
    text = text.replace("  events_days: 365\ndouble_opt_in_ttl_hours: 48\n", "")
    text = text.replace("topics:\n  newsletter:\n    purpose: marketing_email\n", "topics_x:\n")
    text = text.split("topics_x:")[0]
    policy = parse_policy(text.encode(), "p.yaml")
    assert policy.unknown_attributes is None
    assert policy.identities == {} and policy.attributes == {} and policy.topics == {}
    assert policy.retention.keep_ledger_after_erasure and policy.retention.events_days is None
    assert policy.double_opt_in_ttl_hours == 72


def test_regulations_section_replaces_the_builtins() -> None:
    """A `regulations:` section is read into typed periods and replaces the builtins entirely."""
    text = with_regulations(
        "  GDPR:",
        "    respond: 1 month",
        "    extension: 2 months",
        "    roll_forward: true",
        "    holidays: [2026-12-25, '2027-01-01']",
        "  CCPA:",
        "    acknowledge: 10 business days",
        "    respond: 45 days",
        "    extension: 45 days",
        "    opt_out: 15 business_days",
        "  APPI: {respond: 14 days, extension: null}",
    )
    policy = parse_policy(text.encode(), "p.yaml")
    assert set(policy.regulations) == {"GDPR", "CCPA", "APPI"}
    gdpr = policy.regulation_for("GDPR")
    assert gdpr.respond == Period(1, Unit.MONTHS) and gdpr.extension == Period(2, Unit.MONTHS)
    assert gdpr.roll_forward
    assert {str(day) for day in gdpr.holidays} == {"2026-12-25", "2027-01-01"}
    assert policy.regulation_for("CCPA") == BUILTIN_REGULATIONS["CCPA"]
    assert policy.regulation_for("APPI") == Regulation("APPI", Period(14, Unit.DAYS))


def test_absent_regulations_section_takes_the_builtins() -> None:
    """Without a `regulations:` section the builtin GDPR, UK-GDPR and CCPA clocks apply."""
    policy = parse_policy(MINIMAL.encode(), "p.yaml")
    assert policy.regulations == BUILTIN_REGULATIONS
    assert policy.regulation_for("UK-GDPR").roll_forward
    with pytest.raises(KeyError, match="APPI"):
        policy.regulation_for("APPI")


def test_undeclared_regulation_is_reported_at_the_region(tmp_path: Path) -> None:
    """A region's regulation missing from `regulations:` is an error at the region's line."""
    path = tmp_path / "regs.yaml"
    path.write_text(with_regulations(GDPR_CCPA[0]), encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert str(caught.value) == (
        f"{path}:37: regions.US-CA.regulation: regulation 'CCPA' is not declared; declare"
        " it under regulations (declared: GDPR)"
    )


def test_events_days_null_keeps_events() -> None:
    """`events_days: null` is allowed and means events are kept."""
    policy = parse_policy(replace(47, "  events_days: null").encode(), "p.yaml")
    assert policy.retention.events_days is None


def test_default_policy_loads_with_required_purposes_and_bilingual_texts() -> None:
    """The shipped default policy loads, has the six purposes, and en+ja titles and notices."""
    policy = load_policy(DEFAULT_POLICY)
    assert set(policy.purposes) >= REQUIRED_PURPOSES
    assert policy.languages == ("en", "ja")
    for purpose in policy.purposes.values():
        assert set(purpose.titles) == {"en", "ja"}
        for notice in purpose.notices:
            assert set(notice.texts) == {"en", "ja"}
            assert all(text.strip() for text in notice.texts.values())
    assert len(policy.purposes["marketing_email"].notices) >= 2
    assert policy.version.startswith("sha256:")
    assert policy.version == "sha256:" + hashlib.sha256(DEFAULT_POLICY.read_bytes()).hexdigest()


def test_default_policy_encodes_the_regional_rules() -> None:
    """GDPR regions are opt-in, US-CA is opt-out honouring GPC, and sale_or_share obeys GPC."""
    policy = load_policy(DEFAULT_POLICY)
    assert policy.regions["EU"].model is ConsentModel.OPT_IN
    assert policy.regions["US-CA"].model is ConsentModel.OPT_OUT
    assert policy.regions["US-CA"].honor_gpc
    assert policy.purposes["sale_or_share"].gpc_opt_out
    assert policy.purposes["essential"].legal_basis is LegalBasis.CONTRACT
    assert policy.default_region == "OTHER"
    assert all(policy.categories[c].sensitive for c in policy.identities.values())


def test_default_policy_declares_deadlines_for_every_region() -> None:
    """Every region's regulation has DSR clocks; GDPR and CCPA match the builtins."""
    policy = load_policy(DEFAULT_POLICY)
    for region in policy.regions.values():
        assert policy.regulation_for(region.regulation).name == region.regulation
    for name in ("GDPR", "UK-GDPR", "CCPA"):
        assert policy.regulation_for(name) == BUILTIN_REGULATIONS[name]
    assert str(policy.regulation_for("none").respond) == "30 days"


def test_version_changes_with_any_byte() -> None:
    """The policy version is the hash of the file bytes, so even a comment makes a new version."""
    first = parse_policy(MINIMAL.encode())
    second = parse_policy((MINIMAL + "# reviewed\n").encode())
    assert first.version != second.version


def test_duplicate_key_is_reported_with_both_lines(tmp_path: Path) -> None:
    """A key given twice is an error at the second occurrence, naming the first one's line."""
    path = tmp_path / "dup.yaml"
    path.write_text(insert(38, "default_region: US-CA"), encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert str(caught.value) == (
        f"{path}:39: default_region: duplicate key 'default_region' (first on line 38)"
    )


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    """Several independent mistakes all appear, one `file:line: path: message` each, in order."""
    text = MINIMAL.replace("legal_basis: contract", "legal_basis: nope")
    text = text.replace("default_region: EU", "default_region: XX")
    text = text.replace("segments.membership: [marketing_email]", "segments.membership: [ghost]")
    text += "extra: 1\n"
    path = tmp_path / "many.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    lines = str(caught.value).splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [
        f"{path}:18",
        f"{path}:38",
        f"{path}:44",
        f"{path}:49",
    ]
    assert lines[0].startswith(f"{path}:18: purposes.essential.legal_basis: unknown legal basis")
    assert 'gates["segments.membership"][0]' in lines[2]


def test_unreadable_file_is_a_policy_error(tmp_path: Path) -> None:
    """A missing file raises PolicyError too, so callers handle one exception type."""
    with pytest.raises(PolicyError, match="cannot read the file"):
        load_policy(tmp_path / "absent.yaml")


def test_alias_bomb_is_refused() -> None:
    """Exponential alias expansion stops with an error instead of eating memory."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    issues = issues_of("\n".join(lines) + "\n")
    assert any("too large" in i.message for i in issues)


def _scalar_spans() -> list[tuple[int, int]]:
    """Character spans of every scalar in the default policy (keys and values)."""
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    spans: list[tuple[int, int]] = []
    stack = [yaml.compose(text, Loader=yaml.SafeLoader)]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            spans.append((node.start_mark.index, node.end_mark.index))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(n for pair in node.value for n in pair)
    return sorted(spans)


SPANS = _scalar_spans()
REPLACEMENTS = st.one_of(
    st.sampled_from(
        ["", "~", "null", "true", "no", "0", "-1", "1e9", "[]", "{}", "[a, b]", "'", '"', ":",
         "- x", "&a x", "*a", "!!int x", "!!python/object:os.system x", "<<", "EU", "consent",
         "all", "\n  x: 1", "2024-02-30", "!!set {a}", "\t"]
    ),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=12),
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(SPANS) - 1), replacement=REPLACEMENTS)
def test_any_scalar_mutation_loads_or_raises_policy_error(index: int, replacement: str) -> None:
    """Replacing any scalar of the default policy yields a Policy or a PolicyError, nothing else."""
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    start, end = SPANS[index]
    mutated = text[:start] + replacement + text[end:]
    try:
        result = parse_policy(mutated.encode(), "mutated.yaml")
    except PolicyError as error:
        assert error.issues and all(i.line >= 1 for i in error.issues)
    else:
        assert isinstance(result, Policy)
