"""Data-subject requests over HTTP: filing, the workflow, downloads, bulk erasure, self-service."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.di import Provide
from litestar.params import FromQuery, JSONBody, QueryParameter

from consentry import customers
from consentry.access import require
from consentry.core.principals import Principal, Scope, require_customer
from consentry.core.runtime import Core
from consentry.customers import me
from consentry.domain.request_workflow import RequestOrigin, RequestState, RequestType
from consentry.dsr import erasure, queue, verification
from consentry.dsr import export as dsr_export
from consentry.dsr import schemas as s
from consentry.dsr import workflow as dsr
from consentry.dsr.queue import RequestFilter
from consentry.dsr.records import DsrRequest
from consentry.dsr.requests import step
from consentry.http.deps import ClientDep, CoreDep, Cursor, Limit, PrincipalDep, client_address
from consentry.http.schemas import TokenOut
from consentry.http.writes import respond

HANDLE = (Scope.COMPLIANCE_WRITE,)  # file, verify, extend, reject, fulfil
FILE = (Scope.COMPLIANCE_WRITE, Scope.BACKEND_WRITE)  # the company's backend may file too
READ = (Scope.COMPLIANCE_READ,)
ZIP = "application/zip"


def out(core: Core, r: DsrRequest) -> s.RequestOut:
    return s.request_out(r, core.clock())


async def file_answered(
    request: Request[Any, Any, Any],
    core: Core,
    principal: Principal,
    subject_id: UUID,
    region: str,
    kind: str,
    **options: Any,
) -> Response[s.RequestOut]:
    """File a request (idempotently, with the request's Idempotency-Key) and answer 201."""
    return await respond(
        request,
        principal,
        lambda: dsr.file_request(core, subject_id, region, RequestType(kind), principal, **options),
        lambda r: (201, out(core, r)),
    )


def zip_response(download: dsr_export.Download) -> Response[bytes]:
    return Response(
        download.content,
        media_type=ZIP,
        headers={
            "Content-Disposition": f'attachment; filename="{download.filename}"',
            "Digest": f"sha-256={download.sha256}",
            "Cache-Control": "no-store",
        },
    )


class RequestController(Controller):
    path = "/v1/requests"
    tags = ["data-subject requests"]

    @post(
        "/",
        summary="File a data-subject request",
        description="For a customer, under a regulation (default: the one of the customer's"
        " region). The clocks come from the regulation and count from now. An opt-out of"
        " sale/share applies at once and completes; other requests wait for verification"
        " unless `verified_by` says how the customer's identity was already checked.",
        operation_id="fileRequest",
        status_code=201,
    )
    async def file(
        self,
        request: Request[Any, Any, Any],
        core: CoreDep,
        principal: PrincipalDep,
        data: JSONBody[s.RequestIn],
    ) -> Response[s.RequestOut]:
        require(principal, *FILE)
        subject_id, region = await customers.resolve(core, data.external_id)
        return await file_answered(
            request, core, principal, subject_id, region, data.type,
            regulation=data.regulation, note=data.note, verified_by=data.verified_by,
        )  # fmt: skip

    @get(
        "/",
        summary="List requests: open ones first, by due date (overdue first)",
        description="The compliance queue: filter by state, type, regulation, customer, due"
        " date, overdue or open; each request carries its clocks. Paginated with next_cursor.",
        operation_id="listRequests",
    )
    async def list(
        self,
        core: CoreDep,
        principal: PrincipalDep,
        state_is: Annotated[
            RequestState | None, QueryParameter(query="state", description="the state")
        ] = None,
        type: FromQuery[RequestType | None] = None,
        regulation: FromQuery[str | None] = None,
        customer: FromQuery[str | None] = None,
        due_before: FromQuery[date | None] = None,
        overdue: FromQuery[bool | None] = None,
        open: FromQuery[bool | None] = None,
        cursor: Cursor = None,
        limit: Limit = 100,
    ) -> s.RequestPage:
        require(principal, *READ)
        flt = RequestFilter(state_is, type, regulation, customer, due_before, overdue, open)
        page = await queue.list_requests(core, flt, cursor=cursor, limit=limit)
        return s.RequestPage([out(core, r) for r in page.items], page.next_cursor)

    @get(
        "/{request_id:uuid}",
        summary="One request, with its clocks and history",
        description="The state, the deadlines (due, days left, overdue, extension), every step"
        " taken"
        " and, once done, the result.",
        operation_id="getRequest",
    )
    async def read(self, core: CoreDep, principal: PrincipalDep, request_id: UUID) -> s.RequestOut:
        require(principal, *READ)
        return out(core, await queue.get(core, request_id, principal))

    async def _step(
        self, core: Core, principal: Principal, request_id: UUID, action: str, **kw: Any
    ) -> s.RequestOut:
        require(principal, *HANDLE)
        return out(core, await step(core, request_id, action, principal, **kw))

    @post(
        "/{request_id:uuid}/verify",
        summary="Record how the customer's identity was verified",
        description="Moves a received request to verified; `method` says how (kept in its"
        " history). 409 when the request is past that step.",
        operation_id="verifyRequest",
        status_code=200,
    )
    async def verify(
        self, core: CoreDep, principal: PrincipalDep, request_id: UUID, data: JSONBody[s.VerifyIn]
    ) -> s.RequestOut:
        return await self._step(core, principal, request_id, "verify", method=data.method)

    @post("/{request_id:uuid}/acknowledge", summary="Record that receipt was confirmed to the"
          " customer (CCPA: within 10 business days)", status_code=200,
          description="Stops the acknowledgement clock; 409 once acknowledged or closed.",
          operation_id="acknowledgeRequest")  # fmt: skip
    async def acknowledge(
        self, core: CoreDep, principal: PrincipalDep, request_id: UUID
    ) -> s.RequestOut:
        return await self._step(core, principal, request_id, "acknowledge")

    @post(
        "/{request_id:uuid}/extend",
        summary="Extend the deadline once, with the reason told to the customer",
        description="GDPR: by two more months, decided within the first; CCPA: by 45 more days."
        " A second extension, or one after the original deadline, is a 409.",
        operation_id="extendRequest",
        status_code=200,
    )
    async def extend(
        self, core: CoreDep, principal: PrincipalDep, request_id: UUID, data: JSONBody[s.ReasonIn]
    ) -> s.RequestOut:
        return await self._step(core, principal, request_id, "extend", reason=data.reason)

    @post("/{request_id:uuid}/reject", summary="Reject the request, with the reason",
          status_code=200, operation_id="rejectRequest",
          description="Closes the request as rejected, the reason kept in its history."
          " 409 once closed.")  # fmt: skip
    async def reject(
        self, core: CoreDep, principal: PrincipalDep, request_id: UUID, data: JSONBody[s.ReasonIn]
    ) -> s.RequestOut:
        return await self._step(core, principal, request_id, "reject", reason=data.reason)

    @post(
        "/{request_id:uuid}/fulfil",
        summary="Do what the request asks, and complete it",
        description="access/portability: builds the export bundle; erasure: erases the"
        " customer everywhere (plugins included), destroys their data key and issues a signed"
        " deletion certificate; rectification/restrict: done by people, `note` says what was"
        " done. A plugin failure keeps the request in progress (500 naming the plugin);"
        " fulfilling again carries on.",
        operation_id="fulfilRequest",
        status_code=200,
    )
    async def fulfil(
        self,
        core: CoreDep,
        principal: PrincipalDep,
        request_id: UUID,
        data: JSONBody[s.FulfilIn | None] = None,
    ) -> s.RequestOut:
        require(principal, *HANDLE)
        note = data.note if data is not None else None
        return out(core, await dsr.fulfil(core, request_id, principal, note=note))

    @post(
        "/{request_id:uuid}/download-link",
        summary="A download link for the customer's export (expires with the export)",
        description="A URL under /v1/exports/ that needs no credential: send it to the"
        " customer. 410 when the export has expired.",
        operation_id="createDownloadLink",
        status_code=201,
    )
    async def download_link(
        self, core: CoreDep, principal: PrincipalDep, request_id: UUID
    ) -> s.DownloadLinkOut:
        require(principal, *HANDLE)
        found = await dsr_export.link(core, request_id, principal)
        return s.DownloadLinkOut(found.url, found.expires_at)

    @get(
        "/{request_id:uuid}/export",
        summary="Download the export bundle (ZIP), audited",
        description="The access or portability export of a fulfilled request; the Digest header"
        " has its SHA-256. 410 when it has expired.",
        operation_id="downloadRequestExport",
        media_type=ZIP,
        response_description="a ZIP: JSON files, manifest.json with SHA-256 checksums,"
        " summary.html",
    )
    async def export(
        self, core: CoreDep, principal: PrincipalDep, request_id: UUID
    ) -> Response[bytes]:
        require(principal, Scope.COMPLIANCE_WRITE)
        return zip_response(await dsr_export.download(core, request_id, principal.actor))

    @get(
        "/{request_id:uuid}/certificate",
        summary="The signed deletion certificate",
        description="For a completed erasure: a compact JWS (EdDSA) of what was erased and when;"
        " verify"
        " with /.well-known/jwks.json.",
        operation_id="getDeletionCertificate",
    )
    async def certificate(
        self, core: CoreDep, principal: PrincipalDep, request_id: UUID
    ) -> s.CertificateOut:
        require(principal, *READ)
        found = await erasure.certificate(core, request_id)
        return s.CertificateOut(found.request_id, found.jws, found.claims)


class ExportDownloadController(Controller):
    path = "/v1/exports"
    tags = ["data-subject requests"]

    @get(
        "/{token:str}",
        summary="Download an export with its link",
        description="The link is the only credential: it expires (72 h by default) and each"
        " download is audited.",
        operation_id="downloadExport",
        security=[],
        media_type=ZIP,
    )
    async def download(self, core: CoreDep, token: str) -> Response[bytes]:
        return zip_response(await dsr_export.download_by_link(core, token))


class BulkErasureController(Controller):
    path = "/v1/erasures"
    tags = ["data-subject requests"]

    @post(
        "/",
        summary="Erase many customers (up to 1,000 per call)",
        description="Each customer gets its own erasure request, verified by this call, and is"
        " erased. One failing does not stop the rest: the answer says, per customer, erased,"
        " already_erased, not_found or failed (with why). Sending the same list again finishes"
        " the failed ones and redoes nothing.",
        operation_id="eraseCustomers",
        status_code=200,
    )
    async def erase(
        self, core: CoreDep, principal: PrincipalDep, data: JSONBody[s.BulkErasureIn]
    ) -> s.BulkErasureOut:
        require(principal, *HANDLE)
        outcomes = await dsr.erase_many(
            core, data.external_ids, principal, regulation=data.regulation, note=data.note
        )
        return s.bulk_out(outcomes)


class MyRequestController(Controller):
    path = "/v1/me/requests"
    tags = ["customer self-service"]

    @post(
        "/",
        summary="Ask for my data, or to be erased",
        description="Filed verified: the customer token is the proof of identity. The company"
        " fulfils it within the regulation's deadline.",
        operation_id="fileMyRequest",
        status_code=201,
    )
    async def file(
        self,
        request: Request[Any, Any, Any],
        core: CoreDep,
        principal: PrincipalDep,
        data: JSONBody[s.MyRequestIn],
    ) -> Response[s.RequestOut]:
        subject_id, region = await me(core, principal)
        return await file_answered(
            request, core, principal, subject_id, region, data.type,
            origin=RequestOrigin.CUSTOMER, note=data.note, verified_by="customer token",
        )  # fmt: skip

    @get(
        "/",
        summary="My requests",
        description="With a customer token: the requests filed for me, with their state and"
        " clocks.",
        operation_id="listMyRequests",
    )
    async def mine(
        self, core: CoreDep, principal: PrincipalDep, cursor: Cursor = None, limit: Limit = 100
    ) -> s.RequestPage:
        subject_id, _ = await me(core, principal)
        page = await queue.list_customers_requests(core, subject_id, cursor=cursor, limit=limit)
        return s.RequestPage([out(core, r) for r in page.items], page.next_cursor)

    @get(
        "/{request_id:uuid}",
        summary="One of my requests",
        description="Its state, clocks and history; 404 when it is not mine.",
        operation_id="getMyRequest",
    )
    async def read(self, core: CoreDep, principal: PrincipalDep, request_id: UUID) -> s.RequestOut:
        require_customer(principal)
        return out(core, await queue.get(core, request_id, principal))

    @get(
        "/{request_id:uuid}/export",
        summary="Download my export (ZIP)",
        description="The bundle of my fulfilled access or portability request; the download is"
        " audited.",
        operation_id="downloadMyExport",
        media_type=ZIP,
    )
    async def export(
        self, core: CoreDep, principal: PrincipalDep, request_id: UUID
    ) -> Response[bytes]:
        require_customer(principal)
        return zip_response(await dsr_export.download_mine(core, request_id, principal))


class VerificationController(Controller):
    path = "/v1/verifications"
    tags = ["customer self-service"]
    dependencies = {"client": Provide(client_address, sync_to_thread=False)}

    @post(
        "/",
        summary="Email me a code to prove who I am",
        description="For a customer without a customer token: a ten-digit code goes to the"
        " address if it is a customer's, after the answer, which is the same either way. It"
        " works once, for 15 minutes. At most 3 codes per address and 10 per client address an"
        " hour (settings): past that, 429 with Retry-After. 503 when the service has no email"
        " channel configured.",
        operation_id="sendVerificationCode",
        security=[],
        status_code=202,
    )
    async def send(
        self, core: CoreDep, client: ClientDep, data: JSONBody[s.VerificationIn]
    ) -> s.VerificationSentOut:
        await verification.send_code(core, data.email, client)
        return s.VerificationSentOut(verification.SENT)

    @post(
        "/confirm",
        summary="Exchange the code for a customer token",
        description="The token (15 minutes) files and follows my requests under /v1/me/requests."
        " Five wrong codes use the code up; every wrong, used or expired code gets the same 401."
        " After 10 wrong codes for an address (or 50 from a client address) in a day, every"
        " answer is 429 with Retry-After until the day's window frees, the right code included.",
        operation_id="confirmVerificationCode",
        security=[],
        status_code=201,
    )
    async def confirm(
        self, core: CoreDep, client: ClientDep, data: JSONBody[s.VerificationConfirmIn]
    ) -> TokenOut:
        token = await verification.confirm(core, data.email, data.code, client)
        return TokenOut(token.token, token.expires_at)
