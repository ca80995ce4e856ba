"""What handlers receive by injection, marked explicitly (Litestar 3 drops inferred ones)."""

from __future__ import annotations

from litestar.di import NamedDependency

from consentry.services.core import Core
from consentry.services.principals import Principal

CoreDep = NamedDependency[Core]
PrincipalDep = NamedDependency[Principal]
