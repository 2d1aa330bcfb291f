"""deploy/grafana: the provisioned data source is a Loki one pointing at logpipe's port."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from tests.conftest import REPO

PROVISIONING = REPO / "deploy" / "grafana" / "datasources" / "logpipe.yaml"


def load_json_yaml(text: str) -> object:
    """The file is JSON-compatible YAML with ``#`` comment lines (no YAML parser needed)."""
    return json.loads("\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#")))


def test_datasource_is_loki_at_logpipes_default_address() -> None:
    doc = load_json_yaml(PROVISIONING.read_text())
    assert isinstance(doc, dict) and doc["apiVersion"] == 1
    (source,) = doc["datasources"]
    assert source["type"] == "loki" and source["access"] == "proxy"
    url = urlsplit(source["url"])
    assert (url.scheme, url.port) == ("http", 3100)
    assert source["jsonData"]["maxLines"] <= 5000  # logpipe's max_entries_limit_per_query
    assert source["jsonData"]["httpHeaderName1"] == "X-Scope-OrgID"
    assert source["secureJsonData"]["httpHeaderValue1"] == "fake"
