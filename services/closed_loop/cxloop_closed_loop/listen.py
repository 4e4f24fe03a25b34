"""`cxloop webhooks listen`: a development receiver that verifies and prints Standard Webhooks."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def make_server(
    host: str, port: int, secret: str, *, out: TextIO = sys.stdout
) -> ThreadingHTTPServer:
    """An HTTP server answering 204 to verified webhooks (printed), 401 to the rest."""
    verifier = Webhook(secret)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                body = verifier.verify(data, headers)
            except WebhookVerificationError as exc:
                print(f"REJECTED {headers.get('webhook-id', '?')}: {exc}", file=out, flush=True)
                self._answer(401)
                return
            print(
                f"{body.get('type')} webhook-id={headers['webhook-id']} (signature verified)",
                file=out,
            )
            print(json.dumps(body, indent=2, ensure_ascii=False), file=out, flush=True)
            self._answer(204)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

    return ThreadingHTTPServer((host, port), Handler)


def listen(host: str, port: int, secret: str, *, announce: Callable[[str], None] = print) -> int:
    """Serve until Ctrl-C."""
    server = make_server(host, port, secret)
    announce(f"listening on http://{host}:{port}/ for Standard Webhooks; Ctrl-C to stop")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
