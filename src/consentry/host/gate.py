"""The gate: a plugin's only way to customer data.

For one capability the policy names the purposes it needs (`gates`); every one must allow for
this customer now (consent, or another legal basis the policy allows), or the gate refuses with
the reasons. An allowed view holds only the attributes and identities whose data categories
those purposes use. Views and refusals are audited in the same transaction as the read, and the
consent state is read fresh every time: a withdrawal takes effect on the next view.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from consentry.core.runtime import Core
from consentry.customers import decode_subject, resolve
from consentry.domain.decision import Verdict, evaluate_capability
from consentry.ledger import document_to_preferences, to_state
from consentry.plugins.types import GateRefused, SubjectView
from consentry.query import members
from consentry.query.ast import Node
from consentry.storage.writer import WriteTx


@dataclass(frozen=True, slots=True)
class _Refusal:
    reasons: list[str]


class CoreGate:
    """The gate for one plugin (its name goes into every audit entry, and cannot be changed)."""

    def __init__(self, core: Core, plugin: str) -> None:
        self._core = core
        self._plugin = plugin

    @property
    def plugin(self) -> str:
        return self._plugin

    async def allowed(self, capability: str, subject_id: UUID) -> bool:
        decided = await self._decide(self._core.db, capability, subject_id)
        return decided is not None and all(v.allowed for v in decided[1])

    async def subject_id(self, external_id: str) -> UUID:
        subject_id, _ = await resolve(self._core, external_id)
        return subject_id

    async def view(self, capability: str, subject_id: UUID) -> SubjectView:
        core, actor = self._core, f"plugin:{self.plugin}"

        async def job(tx: WriteTx) -> SubjectView | _Refusal:
            decided = await self._decide(tx, capability, subject_id)
            target = f"subject:{subject_id}"
            if decided is None:
                tx.audit(
                    actor,
                    "plugin.view_refused",
                    target,
                    capability=capability,
                    reasons=["unknown_subject"],
                )
                return _Refusal(["no such customer"])
            row, verdicts = decided
            if not verdicts or not all(v.allowed for v in verdicts):
                codes = sorted({c for v in verdicts for c in v.codes if not v.allowed})
                tx.audit(actor, "plugin.view_refused", target, capability=capability, reasons=codes)
                return _Refusal(
                    [
                        f"{v.purpose}: {r.message}" if v.purpose else r.message
                        for v in verdicts
                        if not v.allowed
                        for r in v.reasons
                    ]
                )
            view = await self._build(row, capability, verdicts)
            tx.audit(
                actor,
                "plugin.view",
                target,
                capability=capability,
                purposes=list(view.purposes),
                fields=sorted([*view.attributes, *(f"identity.{k}" for k in view.identities)]),
            )
            return view

        result = await core.writer.submit(job)
        if isinstance(result, _Refusal):
            raise GateRefused(capability, subject_id, result.reasons)
        return result

    # -- set-based: who matches a filter tree (segments) ------------------------------------------

    def _check_query(self, capability: str, purpose: str, root: Node) -> None:
        policy = self._core.policy
        if purpose not in policy.gates.get(capability, ()):
            raise GateRefused(
                capability, None, [f"the policy does not gate {capability} to purpose {purpose!r}"]
            )
        found = members.problems(policy, purpose, root)
        if found:
            raise GateRefused(capability, None, found)

    async def count(
        self, capability: str, purpose: str, root: Node, *, requested_by: str | None = None
    ) -> int:
        self._check_query(capability, purpose, root)
        core = self._core
        now = core.clock()
        n = await members.count(
            core.db, core.policy, purpose, root, postgres=core.db.is_postgres, now=now
        )

        async def job(tx: WriteTx) -> None:  # an aggregate: audited just after the query
            tx.audit(
                f"plugin:{self.plugin}",
                "plugin.query",
                f"purpose:{purpose}",
                capability=capability,
                kind="count",
                count=n,
                **({"requested_by": requested_by} if requested_by else {}),
            )

        await core.writer.submit(job)
        return n

    async def members(
        self,
        capability: str,
        purpose: str,
        root: Node,
        *,
        after: UUID | None = None,
        limit: int = 100,
        requested_by: str | None = None,
    ) -> list[UUID]:
        self._check_query(capability, purpose, root)
        core = self._core

        async def job(tx: WriteTx) -> list[UUID]:
            found = await members.members(
                tx,
                core.policy,
                purpose,
                root,
                postgres=core.db.is_postgres,
                now=tx.now,
                after=after,
                limit=limit,
            )
            tx.audit(
                f"plugin:{self.plugin}",
                "plugin.query",
                f"purpose:{purpose}",
                capability=capability,
                kind="members",
                subjects=[str(i) for i in found[:limit]],
                **({"requested_by": requested_by} if requested_by else {}),
            )
            return found

        return await core.writer.submit(job)

    async def _decide(
        self, reader: Any, capability: str, subject_id: UUID
    ) -> tuple[dict[str, Any], list[Verdict]] | None:
        rows = await reader.fetch("SELECT * FROM subjects WHERE id = ?", subject_id)
        if not rows:
            return None
        states = await reader.fetch("SELECT * FROM consent_state WHERE subject_id = ?", subject_id)
        prefs = await reader.fetch(
            "SELECT document FROM preference_state WHERE subject_id = ?", subject_id
        )
        verdicts = evaluate_capability(
            self._core.policy,
            capability,
            region=rows[0]["region"],
            states={(s["purpose"], s["channel"]): to_state(s) for s in states},
            preferences=document_to_preferences(json.loads(prefs[0]["document"]) if prefs else {}),
            now=self._core.clock(),
        )
        return rows[0], verdicts

    async def _build(
        self, row: dict[str, Any], capability: str, verdicts: list[Verdict]
    ) -> SubjectView:
        policy = self._core.policy
        purposes = tuple(v.purpose for v in verdicts)
        categories = frozenset(c for p in purposes for c in policy.purposes[p].categories)
        dek = await self._core.keys.get(str(row["id"]))
        customer = decode_subject(row, dek) if dek is not None else None
        attributes = {
            k: v
            for k, v in (customer.attributes if customer else {}).items()
            if policy.category_of(k) in categories
        }
        identities = {
            k: v
            for k, v in (customer.identities if customer else {}).items()
            if policy.identities.get(k) in categories
        }
        return SubjectView(
            subject_id=UUID(str(row["id"])),
            capability=capability,
            purposes=purposes,
            region=row["region"],
            attributes=attributes,
            identities=identities,
            categories=categories,
        )
