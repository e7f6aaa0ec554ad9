"""The sandbox base over real loopback HTTP: routing, auth, throttling, drops, bad bodies."""

from __future__ import annotations

import pytest
import requests

from destinations.sandbox.server import Response, SandboxServer, route


class EchoSandbox(SandboxServer):
    def authenticate(self, request):
        if request.headers.get("authorization") != "Bearer ok":
            return Response(401, {"message": "bad token"})
        return None

    def throttled(self, retry_after):
        return Response(429, {"errorType": "RATE_LIMIT"}, {"Retry-After": str(retry_after)})

    @route("POST", r"/lists/(?P<list_id>\w+)/members")
    def add(self, request):
        return Response(200, {"list": request.params["list_id"], "n": len(request.json()["members"])})


AUTH = {"Authorization": "Bearer ok"}


def test_routes_params_auth_and_unknown_paths():
    with EchoSandbox() as sandbox:
        ok = requests.post(f"{sandbox.url}/lists/abc/members", json={"members": [1, 2]}, headers=AUTH, timeout=5)
        assert ok.status_code == 200 and ok.json() == {"list": "abc", "n": 2}
        assert requests.post(f"{sandbox.url}/lists/abc/members", json={}, timeout=5).status_code == 401
        assert requests.get(f"{sandbox.url}/nope", timeout=5).status_code == 404
        bad = requests.post(f"{sandbox.url}/lists/abc/members", data=b"{}", headers=AUTH, timeout=5)
        assert bad.status_code == 400  # KeyError in the handler: the tool's 400, not a crash
        assert sandbox.refused == {"unauthorized": 1, "not_found": 1, "bad_request": 1}


def test_throttling_answers_the_tools_signal():
    with EchoSandbox(throttle_rps=2) as sandbox:
        codes = [requests.post(f"{sandbox.url}/lists/a/members", json={"members": []}, headers=AUTH,
                               timeout=5) for _ in range(6)]
        throttled = [r for r in codes if r.status_code == 429]
        assert throttled and throttled[0].json() == {"errorType": "RATE_LIMIT"}
        assert int(throttled[0].headers["Retry-After"]) >= 1


def test_dropped_connections():
    with EchoSandbox(drop_connection_share=1.0) as sandbox:
        with pytest.raises(requests.ConnectionError):
            requests.post(f"{sandbox.url}/lists/a/members", json={"members": []}, headers=AUTH, timeout=5)


def test_bad_knobs_are_refused():
    with pytest.raises(ValueError, match="error_share"):
        EchoSandbox(error_share=2)
