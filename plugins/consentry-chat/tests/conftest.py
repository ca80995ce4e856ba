"""The chat plugin's fixtures: a running Consentry with only this plugin, and a real webhook."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

import consentry_chat
from chat_server import SECRET, Webhook, handler

pytest_plugins = ["consentry.testing"]


@pytest.fixture
def consentry_plugins() -> list[tuple[str, ModuleType]]:
    return [("chat", consentry_chat)]


@pytest.fixture
def consentry_policy_path() -> Path:
    return Path(__file__).with_name("policy.yaml")


@pytest.fixture
def chat_webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Webhook]:
    """The chat channel configured to post to a local server (CONSENTRY_CHAT_WEBHOOK_*): the
    host reads them when the service starts, so ask for this fixture before `consentry_service`."""
    hook = Webhook(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(hook))
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("CONSENTRY_CHAT_WEBHOOK_URL", hook.url)
    monkeypatch.setenv("CONSENTRY_CHAT_WEBHOOK_SECRET", SECRET)
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
