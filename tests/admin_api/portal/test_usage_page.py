"""The application page's usage table: calls and denials by API and reason, from the
counts authz_server processes report; the period to choose; names escaped."""

from __future__ import annotations

import re
import time
from html import unescape

from starlette.testclient import TestClient

from admin_api.services import usage
from portcullis.sync.v1 import sync_pb2
from tests.admin_api.conftest import published_api
from tests.admin_api.portal.conftest import PortalEnv, csrf_of

HOSTILE = '<script>alert("x")</script>'


def text_of(html: str) -> str:
    inline = re.sub(r"</?(code|em|span|strong|a)\b[^>]*>", "", html)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", inline)).split())


def test_calls_and_denials_by_api_and_reason(env: PortalEnv, signed_in: TestClient) -> None:
    api = published_api(env.store, name="PizzaShack", description=HOSTILE)
    page = signed_in.get("/portal/applications")
    made = signed_in.post("/portal/applications", data={"csrf": csrf_of(page), "name": "Mobile", "tier": "Unlimited"})
    application_url = made.headers["location"]
    application_id = application_url.rsplit("/", 1)[-1]
    empty = signed_in.get(application_url)
    assert "No calls in this period" in empty.text
    hour = int(time.time()) // 3600 * 3600
    usage.record_report(env.store, sync_pb2.UsageReport(reporter="authz@h:1/worker-0", counts=[
        sync_pb2.UsageCount(hour_start=hour, application_id=application_id, api_id=api.id, outcome="allow",
                            reason="allowed", count=7),
        sync_pb2.UsageCount(hour_start=hour - 3 * 3600, application_id=application_id, api_id=api.id,
                            outcome="deny", reason="ip_not_allowed", count=2)]))
    page = signed_in.get(application_url)
    table = text_of(page.text.split('id="usage-table">')[1].split("</table>")[0])
    assert table == "API Calls Allowed Denied Denials by reason PizzaShack 1.0.0 9 7 2 ip_not_allowed 2"
    last_hour = signed_in.get(application_url + "?hours=1")
    assert text_of(last_hour.text.split('id="usage-table">')[1].split("</table>")[0]).endswith("7 7 0 -")
    assert "<script>alert" not in page.text
