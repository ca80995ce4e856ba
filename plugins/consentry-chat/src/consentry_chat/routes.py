"""HTTP: `POST /v1/plugins/chat/send` sends one chat message to a customer."""

from __future__ import annotations

from typing import Annotated

import msgspec
from consentry.plugins import (
    ContextDep,
    Forbidden,
    Invalid,
    PrincipalDep,
    Scope,
    ServiceError,
    require,
)
from litestar import post

from consentry_chat import deliveries, webhook


class BadGateway(ServiceError):
    status = 502
    title = "Bad gateway"


class NotConfigured(ServiceError):
    status = 503
    title = "Service unavailable"


class ChatSendIn(msgspec.Struct, forbid_unknown_fields=True):
    external_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]


class ChatSendOut(msgspec.Struct):
    delivery_id: str
    status: str


@post(
    "/send",
    status_code=201,
    summary="Send a chat message to a customer, if the gate allows",
    description="The gate decides for the chat capability's purposes; a refusal is a 403 with"
    " the reasons, a customer without a chat address a 422.",
    operation_id="chatSendMessage",
)
async def send_chat(data: ChatSendIn, context: ContextDep, principal: PrincipalDep) -> ChatSendOut:
    require(principal, Scope.BACKEND_WRITE)
    subject_id = await context.gate.subject_id(data.external_id)
    try:
        sent = await deliveries.deliver(context, subject_id, data.text)
    except deliveries.Refused as exc:
        raise Forbidden(f"chat is not allowed for this customer now: {exc}") from exc
    except deliveries.NoAddress as exc:
        raise Invalid(str(exc), field="external_id") from exc
    except webhook.NotConfigured as exc:
        raise NotConfigured(str(exc)) from exc
    if sent.status != "delivered":
        raise BadGateway(f"delivery {sent.id} failed: {sent.error}")
    return ChatSendOut(sent.id, sent.status)
