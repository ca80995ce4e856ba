"""The core's tables. Piccolo defines them; the migrations (`storage.migrations`) create them.

Personal fields are ciphertext (`*_enc`) or keyed blind indexes (`*_index`); plain columns hold
only what policy marks as not sensitive. A change here is also a new migration
(`tests/integration/test_upgrade.py` fails while the two disagree).
"""

from __future__ import annotations

from piccolo.columns import (
    JSON,
    UUID,
    BigInt,
    Bytea,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table


class Subject(Table, tablename="subjects"):
    id = UUID(primary_key=True)
    external_id = Varchar(length=200, unique=True)
    region = Varchar(length=20)
    email_index = Varchar(length=64, null=True, unique=True, default=None)
    phone_index = Varchar(length=64, null=True, index=True, default=None)
    identities_enc = Bytea(null=True, default=None)
    attributes = JSON(default="{}")
    attributes_enc = Bytea(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()
    version = Integer(default=1)


class Event(Table, tablename="events"):
    id = UUID(primary_key=True)
    subject_id = UUID(index=True)
    name = Varchar(length=100)
    occurred_at = Timestamptz()
    received_at = Timestamptz()
    properties = JSON(default="{}")


class ConsentRecord(Table, tablename="consent_records"):
    """The ledger: append-only, one row per decision. Its columns are `subject_id` and the fields
    of `ledger.records.LedgerRecord`, the one shape of a ledger row (tests check they agree)."""

    id = UUID(primary_key=True)
    subject_id = UUID(index=True)
    purpose = Varchar(length=100)
    channel = Varchar(length=50, default="")
    decision = Varchar(length=20)
    legal_basis = Varchar(length=30)
    notice_version = Varchar(length=50, default="")
    notice_hash = Varchar(length=80, default="")
    language = Varchar(length=10, default="")
    policy_version = Varchar(length=80)
    source = Varchar(length=30)
    actor = Varchar(length=100)
    recorded_at = Timestamptz()
    expires_at = Timestamptz(null=True, default=None)
    evidence = JSON(default="{}")


class ConsentState(Table, tablename="consent_state"):
    """Current decision per (subject, purpose, channel): a rebuildable projection of the ledger."""

    key = Varchar(length=300, primary_key=True)
    subject_id = UUID(index=True)
    purpose = Varchar(length=100)
    channel = Varchar(length=50, default="")
    decision = Varchar(length=20)
    legal_basis = Varchar(length=30)
    notice_version = Varchar(length=50, default="")
    source = Varchar(length=30)
    record_id = UUID()
    recorded_at = Timestamptz()
    expires_at = Timestamptz(null=True, default=None)


class PreferenceRecord(Table, tablename="preference_records"):
    id = UUID(primary_key=True)
    subject_id = UUID(index=True)
    changes = JSON(default="{}")
    source = Varchar(length=30)
    actor = Varchar(length=100)
    policy_version = Varchar(length=80)
    recorded_at = Timestamptz()


class PreferenceState(Table, tablename="preference_state"):
    subject_id = UUID(primary_key=True)
    document = JSON(default="{}")
    record_id = UUID()
    updated_at = Timestamptz()


class Confirmation(Table, tablename="confirmations"):
    """Double opt-in tokens, stored as hashes; single use, expiring."""

    token_hash = Varchar(length=64, primary_key=True)
    subject_id = UUID(index=True)
    purpose = Varchar(length=100)
    channel = Varchar(length=50, default="")
    notice_version = Varchar(length=50, default="")
    language = Varchar(length=10, default="")
    created_at = Timestamptz()
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)


class ApiKey(Table, tablename="api_keys"):
    id = Varchar(length=40, primary_key=True)
    name = Varchar(length=200)
    scopes = Varchar(length=200)
    secret_hash = Varchar(length=64)
    created_by = Varchar(length=100)
    created_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)


class AuditLog(Table, tablename="audit_log"):
    seq = BigInt(primary_key=True)
    at = Timestamptz()
    actor = Varchar(length=100)
    action = Varchar(length=100)
    target = Varchar(length=100, index=True)
    details = Text()
    policy_version = Varchar(length=80)
    prev_hash = Varchar(length=64)
    hash = Varchar(length=64)
    # ",marketing_email,analytics," : the purposes the details name, for filtering (not hashed)
    purposes = Varchar(length=500, default="")


class AuditCheckpoint(Table, tablename="audit_checkpoints"):
    """A signed tree head: the Merkle root over the first `tree_size` entries."""

    tree_size = BigInt(primary_key=True)
    root = Varchar(length=64)
    head_hash = Varchar(length=64)
    at = Timestamptz()
    key_id = Varchar(length=16)
    signature = Varchar(length=100)


class AuditNode(Table, tablename="audit_nodes"):
    """Perfect Merkle subtrees of 256 leaves and more, so proofs need no full rebuild.

    `key` packs (level, index) as level << 48 | index."""

    key = BigInt(primary_key=True)
    hash = Varchar(length=64)


class SigningKeyRecord(Table, tablename="signing_keys"):
    """Every public key the service has signed with: retired keys stay, old signatures verify."""

    key_id = Varchar(length=16, primary_key=True)
    public_key = Varchar(length=64)  # base64url of the raw 32-byte Ed25519 key
    created_at = Timestamptz()
    retired_at = Timestamptz(null=True, default=None)


class AuditHead(Table, tablename="audit_head"):
    id = Integer(primary_key=True)
    seq = BigInt()
    hash = Varchar(length=64)


class IdempotencyKey(Table, tablename="idempotency_keys"):
    key = Varchar(length=300, primary_key=True)
    fingerprint = Varchar(length=64)
    status = Integer()
    body = Bytea()  # sealed with the customer's data key when the answer names one
    created_at = Timestamptz()
    subject_id = UUID(null=True, default=None)  # erasure removes these answers


class DsrRequest(Table, tablename="dsr_requests"):
    """A data-subject request and its clocks. Dates are ISO `YYYY-MM-DD` (UTC): they sort.

    No personal data in clear: free-text reasons are sealed with the customer's data key."""

    id = UUID(primary_key=True)
    subject_id = UUID(index=True)
    type = Varchar(length=30)
    regulation = Varchar(length=30)
    state = Varchar(length=20)
    channel = Varchar(length=20)  # staff | customer | bulk
    received_at = Timestamptz()
    acknowledge_by = Varchar(length=10, null=True, default=None)
    respond_by = Varchar(length=10)
    extended_to = Varchar(length=10, null=True, default=None)
    due_on = Varchar(length=10, index=True)  # the date that counts now: extended_to or respond_by
    acknowledged_at = Timestamptz(null=True, default=None)
    extended_at = Timestamptz(null=True, default=None)
    closed_at = Timestamptz(null=True, default=None)
    updated_at = Timestamptz()
    notes_enc = Bytea(null=True, default=None)
    history = JSON(default="[]")  # [{at, action, actor, state}]
    result = JSON(default="{}")  # counts, checksums, certificate: no personal data


class DsrExport(Table, tablename="dsr_exports"):
    """An export bundle, sealed with the customer's data key (erasure shreds it too)."""

    request_id = UUID(primary_key=True)
    subject_id = UUID(index=True)
    created_at = Timestamptz()
    expires_at = Timestamptz()
    sha256 = Varchar(length=64)
    size = BigInt()
    bundle_enc = Bytea()
    downloads = Integer(default=0)


class VerificationCode(Table, tablename="verification_codes"):
    """A one-time code asked for an email address, so a customer can file a request without a
    token. Found by the address's blind index; written alike whether or not a customer has the
    address (`subject_id` is then empty), so the work done tells no one who is a customer.
    Stored as an HMAC; single use, expiring, a few attempts."""

    id = UUID(primary_key=True)
    address_index = Varchar(length=64, index=True)
    subject_id = UUID(null=True, default=None, index=True)
    code_hash = Varchar(length=64)
    created_at = Timestamptz()
    expires_at = Timestamptz()
    attempts = Integer(default=0)
    used_at = Timestamptz(null=True, default=None)


class VerificationEvent(Table, tablename="verification_events"):
    """What the verification limits count: a code asked for, a wrong code tried; each kept a
    day, keyed by the address's blind index or the client's keyed hash (never in clear)."""

    id = UUID(primary_key=True)
    kind = Varchar(length=20)  # code_address, code_client, failure_address, failure_client
    key = Varchar(length=64)
    at = Timestamptz()


class Erasure(Table, tablename="erasures"):
    """A tombstone: this customer was erased. Holds no personal data; the external id is kept
    only as a keyed hash, so a later import of the same id is recognised and flagged."""

    external_id_hash = Varchar(length=64, primary_key=True)
    subject_id = UUID(index=True)
    request_id = UUID()
    erased_at = Timestamptz()
    certificate = Text()  # the signed deletion certificate (compact JWS)


class Meta(Table, tablename="consentry_meta"):
    name = Varchar(length=100, primary_key=True)
    value = Text()


CORE_TABLES: tuple[type[Table], ...] = (
    Subject,
    Event,
    ConsentRecord,
    ConsentState,
    PreferenceRecord,
    PreferenceState,
    Confirmation,
    ApiKey,
    AuditLog,
    AuditHead,
    AuditCheckpoint,
    AuditNode,
    SigningKeyRecord,
    IdempotencyKey,
    DsrRequest,
    DsrExport,
    VerificationCode,
    VerificationEvent,
    Erasure,
    Meta,
)
