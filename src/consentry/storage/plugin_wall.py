"""The wall around a plugin's SQL: it reaches the plugin's own tables, and nothing else.

Not a reading of the statement's text, but the engine's own checks on what it touches:

- SQLite: an authorizer, set on the connection only while the plugin's statement is prepared
  and run, allows reading (and, for writes, changing) the plugin's own tables in the main
  database, and denies every other table, DDL (views, triggers, tables, indexes), ATTACH,
  PRAGMA, transaction control and the functions that reach outside the database.
- PostgreSQL: the statement runs in a session logged in as the plugin's own role, which holds
  privileges on the plugin's tables only. `EXECUTE` in a `DO` block, `query_to_xml`, views and
  the like run with that role's privileges, and `RESET ROLE` goes back to that same role.

The role (`consentry_plugin_<name>`, created once per cluster) may log in with a password
derived from the service's secrets; the service's own database user creates it and grants it
its tables, so that user needs CREATEROLE (or is a superuser) once a plugin runs SQL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import sqlite3
from collections.abc import Iterable

from consentry.storage.database import Authorizer, Database, Transaction

RULE = "customer data comes through context.gate"

_ROLE_NAME = re.compile(r"[a-z][a-z0-9_]{0,45}")
_ALWAYS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_RECURSIVE})
_READ = frozenset({sqlite3.SQLITE_READ})
_WRITE = _READ | {sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE}
# functions that reach outside the database (files, extensions, the tokenizer registry)
_FUNCTIONS_DENIED = frozenset({"load_extension", "fts3_tokenizer", "readfile", "writefile", "edit"})
_REFUSED_SQLSTATES = frozenset({"42501", "25006"})  # insufficient_privilege, read_only_sql_tx


def sqlite_authorizer(own: Iterable[str], *, writes: bool) -> Authorizer:
    """An authorizer that lets a statement read (`writes`: and change) only the tables `own`."""
    tables = frozenset(t.lower() for t in own)
    rows = _WRITE if writes else _READ

    def authorize(
        action: int, arg1: str | None, arg2: str | None, database: str | None, _: str | None
    ) -> int:
        if action in _ALWAYS:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_FUNCTION:
            denied = (arg2 or "").lower() in _FUNCTIONS_DENIED
            return sqlite3.SQLITE_DENY if denied else sqlite3.SQLITE_OK
        if action in rows and database == "main" and (arg1 or "").lower() in tables:
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY

    return authorize


def is_refused(exc: BaseException) -> bool:
    """Whether either engine refused a statement for touching what it may not."""
    if isinstance(exc, sqlite3.DatabaseError):  # a denied function is SQLITE_ERROR, by text
        code = getattr(exc, "sqlite_errorcode", None)
        return code == sqlite3.SQLITE_AUTH or str(exc).startswith("not authorized")
    return getattr(exc, "sqlstate", None) in _REFUSED_SQLSTATES


def role_of(plugin: str) -> str:
    """The PostgreSQL role a plugin's statements run as."""
    if not _ROLE_NAME.fullmatch(plugin):
        raise ValueError(f"plugin name {plugin!r} cannot name a database role (a-z, 0-9, _)")
    return f"consentry_plugin_{plugin}"


def password_of(secret: bytes, role: str) -> str:
    """The role's password: the same in every instance sharing the service's secrets."""
    label = b"consentry.plugin-role\x00" + role.encode()
    return hmac.new(secret, label, hashlib.sha256).hexdigest()


def scram_verifier(password: str, salt: bytes, iterations: int = 4096) -> str:
    """What PostgreSQL stores for `password` (SCRAM-SHA-256, RFC 5802): the statement that
    sets it, and so the server's log, never holds the password itself."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _salt(role: str) -> bytes:
    return hashlib.sha256(b"consentry.plugin-role-salt\x00" + role.encode()).digest()[:16]


class PluginRoleError(RuntimeError):
    """The service's database user could not create or grant a plugin's role."""


async def grant_role(db: Database, role: str, password: str, tables: Iterable[str]) -> None:
    """Create (or update) `role` with privileges on `tables` in the current schema, and no
    other; idempotent. Instances starting together take turns on an advisory lock."""
    try:
        async with db.transaction() as tx:
            await tx.execute("SELECT pg_advisory_xact_lock(hashtext('consentry.plugin_roles'))")
            await _grant(tx, role, scram_verifier(password, _salt(role)), tables)
    except Exception as exc:
        raise PluginRoleError(
            f"cannot prepare the database role {role} (the service's database user needs"
            f" CREATEROLE): {type(exc).__name__}: {exc}"
        ) from exc


async def _grant(tx: Transaction, role: str, verifier: str, tables: Iterable[str]) -> None:
    exists = await tx.fetchrow("SELECT 1 AS found FROM pg_roles WHERE rolname = ?", role)
    await tx.execute(
        f'{"ALTER" if exists else "CREATE"} ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB'
        f" NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS PASSWORD '{verifier}'"
    )
    found = await tx.fetchrow("SELECT current_schema() AS name")
    schema = str(found["name"]) if found else "public"
    await tx.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
    for table in tables:
        await tx.execute(
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{schema}"."{table}" TO "{role}"'
        )
        for sequence in await tx.fetch(_OWNED_SEQUENCES, schema, table):
            await tx.execute(
                f'GRANT USAGE, SELECT ON SEQUENCE "{schema}"."{sequence["name"]}" TO "{role}"'
            )


_OWNED_SEQUENCES = (
    "SELECT s.relname AS name FROM pg_class s"
    " JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass"
    " JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace n ON n.oid = t.relnamespace"
    " WHERE s.relkind = 'S' AND n.nspname = ? AND t.relname = ?"
)
