"""The effective decision for one purpose, as a SQL condition on `subjects s`.

It mirrors `consentry.domain.decision.evaluate(policy, region=s.region, purpose=P, channel=None,
topic=None, states=<the subject's consent_state rows>, now=now)` (a property test holds the two
equal over random histories):

- a purpose whose legal basis cannot be objected to (contract...) allows everyone;
- otherwise the latest state row of the purpose, on any channel, decides: allowed iff it is
  `granted`, not expired (`expires_at > now`), and, when the purpose asks for consent again on
  a notice change, given under the current notice version;
- with no row: legitimate interest allows; otherwise the region's default (the purpose's
  `region_defaults`, else opt-out regions allow), an unknown region denies.

Restriction: with no channel and no topic, `evaluate` does not look at preferences (channel
switches and topics narrow only a question asked for a channel or topic), so neither does this.
Segments answer "may this purpose use the customer", not "may we send on channel C": a sender
asks the gate per channel at send time.
"""

from __future__ import annotations

from datetime import datetime

from consentry.domain.purposes import ConsentModel, LegalBasis, Policy
from consentry.query.sql import Compiled


def default_allowed_regions(policy: Policy, purpose: str) -> list[str]:
    """Regions (as stored in `subjects.region`) where no record means allowed; "" stands for the
    policy's default region."""
    spec = policy.purposes[purpose]
    allowed = [
        code
        for code, region in policy.regions.items()
        if spec.region_defaults.get(code, region.model is ConsentModel.OPT_OUT)
    ]
    if policy.default_region in allowed:
        allowed.append("")
    return sorted(allowed)


def consent_condition(policy: Policy, purpose: str, *, postgres: bool, now: datetime) -> Compiled:
    spec = policy.purposes[purpose]
    if not spec.legal_basis.objectable:
        return Compiled("TRUE")
    params: list[object] = [purpose, now]
    checks = "l.decision = 'granted' AND (l.expires_at IS NULL OR l.expires_at > ?)"
    if spec.reconsent_on_notice_change:
        checks += " AND l.notice_version = ?"
        params.append(spec.current_notice.version)
    latest = (
        "s.id IN (SELECT l.subject_id FROM (SELECT c.subject_id, c.decision, c.expires_at,"
        " c.notice_version, ROW_NUMBER() OVER (PARTITION BY c.subject_id"
        " ORDER BY c.recorded_at DESC) AS rn FROM consent_state c WHERE c.purpose = ?) l"
        f" WHERE l.rn = 1 AND {checks})"
    )
    no_record = (
        "NOT EXISTS (SELECT 1 FROM consent_state c WHERE c.subject_id = s.id AND c.purpose = ?)"
    )
    if spec.legal_basis is LegalBasis.LEGITIMATE_INTEREST:
        return Compiled(f"({latest} OR {no_record})", [*params, purpose])
    regions = default_allowed_regions(policy, purpose)
    if not regions:
        return Compiled(f"({latest})", params)
    marks = ", ".join("?" for _ in regions)
    return Compiled(
        f"({latest} OR (s.region IN ({marks}) AND {no_record}))", [*params, *regions, purpose]
    )
