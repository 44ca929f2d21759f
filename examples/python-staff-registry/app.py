"""staff-registry-py: pulls the people a provincial staff registry changed since the last sync,
page by page, written in Python against the hub's WIT (`wit/connector.wit`).

The registry answers `GET /people?limit=N[&cursor=…][&updated_since=…]` behind an `x-api-key`
with `{"data": [...], "meta": {"next_cursor": "…"}}`, the API the Rust `pull` template of
`hub plugin new` reads. Build it with `./build.sh` (componentize-py from PyPI).
"""

import json
from urllib.parse import urlencode, urlsplit

import wit_world
from componentize_py_types import Err
from wit_world.imports import healthforce_hub_types as hub
from wit_world.imports import outgoing_handler, records, secrets, state
from wit_world.imports import wasi_http_types as http
from wit_world.imports.streams import StreamError_Closed

# The source system's name in every record's provenance.
SYSTEM = "staff-registry-py"


class WitWorld(wit_world.WitWorld):
    def sync(self, request: hub.SyncRequest) -> hub.SyncSummary:
        config = read_config(request.config)
        headers = {"x-api-key": secrets.get("api_key"), "accept": "application/json"}
        # The cursor: the newest change seen by the last complete sync (`since`), and
        # mid-sync the registry's cursor of the next page and the newest change so far.
        cursor = json.loads(request.cursor) if request.cursor else {}
        since, page_cursor = cursor.get("since"), cursor.get("next")
        newest = cursor.get("high_water") or since
        pages = emitted = 0
        while True:
            query = {"limit": config["per_page"]}
            if page_cursor:
                query["cursor"] = page_cursor
            if since:
                query["updated_since"] = since
            body = get_json(config["base_url"], "/people?" + urlencode(query), headers)
            rows = body.get("data") or []
            if rows:
                # Refused rows are kept by the hub as rejects with their reason.
                records.emit([to_record(row) for row in rows])
            pages += 1
            emitted += len(rows)
            for row in rows:
                changed = row.get("updated_at")
                if changed and (newest is None or changed > newest):
                    newest = changed
            page_cursor = (body.get("meta") or {}).get("next_cursor")
            if not page_cursor:
                break
            state.save_cursor(json.dumps({"since": since, "next": page_cursor, "high_water": newest}))
        state.save_cursor(json.dumps({"since": newest}))
        return hub.SyncSummary(pages=pages, records_emitted=emitted)

    def handle_webhooks(self, requests):
        return [Err(hub.Error_Unsupported("this connector only pulls")) for _ in requests]

    def handle_messages(self, messages, config):
        raise Err(hub.Error_Unsupported("this connector only pulls"))

    def deliver(self, events, config):
        raise Err(hub.Error_Unsupported("this connector only pulls"))


def read_config(text: str) -> dict:
    config = json.loads(text)
    base_url = config.get("base_url")
    if not isinstance(base_url, str) or urlsplit(base_url).scheme not in ("http", "https"):
        raise Err(hub.Error_Config("base_url must be the registry's http(s) URL"))
    return {"base_url": base_url.rstrip("/"), "per_page": int(config.get("per_page", 500))}


def text(row: dict, field: str):
    value = row.get(field)
    return value if isinstance(value, str) and value.strip() else None


def to_record(row: dict) -> hub.CanonicalRecord:
    """One listed row as the hub's record; the hub validates it (NIK, dates, STR)."""
    return hub.CanonicalRecord_Practitioner(
        hub.Practitioner(
            nik=text(row, "nik"),
            str_number=text(row, "str"),
            full_name=text(row, "name"),
            birth_place=text(row, "birth_place"),
            birth_date=text(row, "birth_date"),
            gender=hub.Gender.UNKNOWN,
            profession=None,
            phone=None,
            email=None,
            registrations=[],
            trainings=[],
            employments=[],
            educations=[],
            source=hub.SourceRef(
                system=SYSTEM, id=text(row, "id") or "", updated_at=text(row, "updated_at")
            ),
        )
    )


def get_json(base_url: str, path_and_query: str, headers: dict) -> dict:
    """GET over wasi:http, the JSON body of a 2xx answer; else the hub's error for it."""
    url = base_url + path_and_query
    parts = urlsplit(url)
    request = http.OutgoingRequest(
        http.Fields.from_list([(name, value.encode()) for name, value in headers.items()])
    )
    request.set_method(http.Method_Get())
    request.set_scheme(http.Scheme_Https() if parts.scheme == "https" else http.Scheme_Http())
    request.set_authority(parts.netloc)
    request.set_path_with_query(parts.path + ("?" + parts.query if parts.query else ""))
    try:
        future = outgoing_handler.handle(request, None)
    except Err as refused:
        raise Err(hub.Error_Unavailable(f"GET {url}: {error_words(refused.value)}"))
    with future:
        answer = future.get()
        while answer is None:
            with future.subscribe() as ready:
                ready.block()
            answer = future.get()
    outcome = answer.value
    if isinstance(outcome, Err):
        raise Err(hub.Error_Unavailable(f"GET {url}: {error_words(outcome.value)}"))
    with outcome.value as response:
        status = response.status()
        with response.consume() as body, body.stream() as stream:
            chunks = []
            while True:
                try:
                    chunks.append(stream.blocking_read(64 * 1024))
                except Err as end:
                    if isinstance(end.value, StreamError_Closed):
                        break
                    raise Err(hub.Error_Unavailable(f"GET {url}: the answer broke off"))
    data = b"".join(chunks)
    if status in (401, 403):
        raise Err(hub.Error_Unauthorized(f"GET {url} answered {status}: check the api_key secret"))
    if status == 429 or status >= 500:
        raise Err(hub.Error_Unavailable(f"GET {url} answered {status}"))
    if not 200 <= status < 300:
        raise Err(hub.Error_InvalidInput(f"GET {url} answered {status}: {data[:200]!r}"))
    try:
        return json.loads(data)
    except ValueError:
        raise Err(hub.Error_InvalidInput(f"GET {url} answered {status} with a body that is not JSON"))


def error_words(code) -> str:
    """`ErrorCode_HttpRequestDenied` as `http request denied`."""
    name = type(code).__name__.removeprefix("ErrorCode_")
    return "".join(" " + c.lower() if c.isupper() else c for c in name).strip()
