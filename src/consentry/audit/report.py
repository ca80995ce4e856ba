"""The verdict of an audit verification: verified, broken (and where first), or unverifiable."""

from __future__ import annotations

from dataclasses import dataclass, field

from consentry.audit.chain import Break


@dataclass
class Report:
    entries: int = 0
    checkpoints: int = 0  # checkpoints whose signature and root were checked
    broken: Break | None = None
    problems: list[str] = field(default_factory=list)  # what makes the result not "verified"
    unverified: tuple[int, int] | None = None  # (first, last) seq no checkpoint covers
    rechecked: int = 0  # ranges a worker found odd, verified again row by row

    @property
    def status(self) -> str:
        if self.broken is not None or self.problems:
            return "broken"
        if self.unverified is not None or self.checkpoints == 0:
            return "unverifiable"
        return "verified"

    @property
    def exit_code(self) -> int:
        return {"verified": 0, "broken": 1, "unverifiable": 3}[self.status]

    def summary(self) -> str:
        lines = [f"{self.status}: {self.entries} entries, {self.checkpoints} checkpoints checked"]
        if self.broken is not None:
            b = self.broken
            lines.append(f"first break at seq {b.seq}: expected {b.expected}, found {b.found}")
        lines.extend(self.problems)
        if self.unverified is not None:
            first, last = self.unverified
            lines.append(
                f"entries {first}..{last} are not covered by any signed checkpoint:"
                " their integrity and completeness cannot be verified"
            )
        if self.checkpoints == 0 and self.broken is None and not self.problems:
            lines.append("no signed checkpoint was checked: nothing proves the log is complete")
        return "\n".join(lines)
