"""kv-counter-py: the Python twin of kv-counter (e2e/components/kv-counter/src/lib.rs has the
routes and answers; this file gives the same ones, byte for byte), built with componentize-py
against the world in wit/world.wit: wasi:http/proxy@0.2.0 plus wasmpod:host/capabilities
(wasi:keyvalue@0.2.0-draft store/atomics/batch, wasi:config@0.2.0-rc.1) from runtime/wit.

build.sh names the keyvalue and config modules (kv_store, kv_atomics, kv_batch, config_store)
with --import-interface-name: both packages call their interface `store`.

A host error is an answer (503), never an exception out of `handle` (that would trap); a
result-returning import raises componentize_py_types.Err(<the WIT error variant>).
"""

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import config_store, kv_atomics, kv_batch, kv_store
from wit_world.imports.types import (
    Fields,
    IncomingBody,
    IncomingRequest,
    Method_Delete,
    Method_Get,
    Method_Post,
    Method_Put,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)

# A host could hand out cursors forever; a test component must still answer.
MAX_PAGES = 10_000


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        try:
            status, body = route(request)
        except Exception as e:  # a bug here, not a host error: still answer
            status, body = 500, lines([f"internal error: {e!r}"])
        respond(response_out, status, body)


def lines(items) -> bytes:
    """One text line per item, each ending in a newline."""
    return "".join(f"{item}\n" for item in items).encode()


def line(status: int, text: str):
    return status, lines([text])


def route(request: IncomingRequest):
    method = request.method()
    path = (request.path_with_query() or "/").split("?", 1)[0]
    path = path[1:] if path.startswith("/") else path
    name, slash, rest = path.partition("/")
    rest = rest if slash else None  # None: no slash after the route name

    def allowed(*kinds) -> bool:
        return isinstance(method, kinds)

    usages = {
        "increment": "/increment/<bucket>/<key>",
        "get": "/get/<bucket>/<key>",
        "set": "/set/<bucket>/<key>",
        "delete": "/delete/<bucket>/<key>",
        "keys": "/keys/<bucket>",
        "batch": "/batch/<bucket>",
    }
    methods = {
        "increment": (Method_Post, Method_Get),
        "get": (Method_Get,),
        "set": (Method_Put, Method_Post),
        "delete": (Method_Delete, Method_Post),
        "keys": (Method_Get,),
        "batch": (Method_Post, Method_Put),
        "config": (Method_Get,),
    }
    if name == "":
        return line(200, "hello from kv-counter")
    if name not in methods:
        return line(404, "not found")
    if not allowed(*methods[name]):
        return line(405, "method not allowed")
    if name == "config":
        return config_get_all() if rest is None else config_get(rest)
    if name in ("keys", "batch"):
        if rest is None:
            return line(400, f"usage: {usages[name]}")
        if name == "keys":
            return keyvalue(lambda: keys(rest))
        return batch(rest, read_body(request))
    if rest is None or "/" not in rest:
        return line(400, f"usage: {usages[name]}")
    bucket, key = rest.split("/", 1)
    if name == "increment":
        return keyvalue(lambda: increment(bucket, key))
    if name == "get":
        return keyvalue(lambda: get(bucket, key))
    if name == "set":
        body = read_body(request)
        return keyvalue(lambda: set_(bucket, key, body))
    return keyvalue(lambda: delete(bucket, key))


# --- keyvalue ---------------------------------------------------------------------------


def keyvalue(op):
    """Runs `op`; a keyvalue error from the host is a 503 that names it."""
    try:
        return op()
    except Err as e:
        return line(503, f"keyvalue error: {describe_kv(e.value)}")


def describe_kv(e) -> str:
    if isinstance(e, kv_store.Error_NoSuchStore):
        return "no-such-store"
    if isinstance(e, kv_store.Error_AccessDenied):
        return "access-denied"
    if isinstance(e, kv_store.Error_Other):
        return f"other: {e.value}"
    return f"other: {e!r}"


def increment(bucket: str, key: str):
    with kv_store.open(bucket) as b:
        n = kv_atomics.increment(b, key, 1)
    return line(200, f"{key}={n}")


def get(bucket: str, key: str):
    with kv_store.open(bucket) as b:
        value = b.get(key)
    if value is None:
        return line(404, "missing")
    return 200, bytes(value)


def set_(bucket: str, key: str, value: bytes):
    with kv_store.open(bucket) as b:
        b.set(key, value)
    return line(200, f"set {key}")


def delete(bucket: str, key: str):
    with kv_store.open(bucket) as b:
        b.delete(key)
    return line(200, f"deleted {key}")


def keys(bucket: str):
    found = []
    with kv_store.open(bucket) as b:
        cursor = None
        for _ in range(MAX_PAGES):
            page = b.list_keys(cursor)
            found.extend(page.keys)
            cursor = page.cursor
            if cursor is None:
                break
    if cursor is not None:
        raise Err(kv_store.Error_Other(f"list-keys gave more than {MAX_PAGES} pages"))
    return 200, lines(sorted(set(found)))


def batch(bucket: str, body: bytes):
    """`k=v` lines go to one set-many, `-k` lines to one delete-many (after it), a bare `k` is
    only read; then one get-many of every key named, in the order first named."""
    sets, deletes, named = [], [], []
    for raw in body.decode("utf-8", "replace").split("\n"):
        text = raw.rstrip("\r")
        if "=" in text:
            key, value = text.split("=", 1)
            sets.append((key, value.encode()))
        elif text.startswith("-"):
            key = text[1:]
            deletes.append(key)
        else:
            key = text
        if text and key not in named:
            named.append(key)
    if not named:
        return line(400, "empty batch")

    def run():
        with kv_store.open(bucket) as b:
            if sets:
                kv_batch.set_many(b, sets)
            if deletes:
                kv_batch.delete_many(b, deletes)
            got = kv_batch.get_many(b, named)
        if len(got) != len(named):
            raise Err(kv_store.Error_Other(f"get-many: {len(got)} results for {len(named)} keys"))
        out = []
        for asked, pair in zip(named, got):
            if pair is None:
                out.append(f"{asked} missing")
            else:  # the key the host returns, not the one asked for: a test sees a mix-up
                k, v = pair
                out.append(f"{k}={bytes(v).decode('utf-8', 'replace')}")
        return 200, lines(out)

    return keyvalue(run)


# --- config -----------------------------------------------------------------------------


def config_error(e: Err):
    v = e.value
    if isinstance(v, config_store.Error_Upstream):
        what = f"upstream: {v.value}"
    elif isinstance(v, config_store.Error_Io):
        what = f"io: {v.value}"
    else:
        what = repr(v)
    return line(503, f"config error: {what}")


def config_get(key: str):
    try:
        value = config_store.get(key)
    except Err as e:
        return config_error(e)
    if value is None:
        return line(404, "missing")
    return line(200, value)


def config_get_all():
    try:
        pairs = config_store.get_all()
    except Err as e:
        return config_error(e)
    return 200, lines(f"{k}={v}" for k, v in sorted(pairs))


# --- wasi:http --------------------------------------------------------------------------


def read_body(request: IncomingRequest) -> bytes:
    """The whole request body (empty when there is none or it cannot be read)."""
    data = bytearray()
    try:
        body = request.consume()
    except Err:
        return bytes(data)
    try:
        # The stream is a child of the body: it must be dropped before `finish`.
        with body.stream() as stream:
            while True:
                try:
                    data += stream.blocking_read(64 * 1024)
                except Err:  # closed, or failed: either way the end of what we get
                    break
    except Err:
        pass
    IncomingBody.finish(body)
    return bytes(data)


def respond(out: ResponseOutparam, status: int, body: bytes) -> None:
    headers = Fields.from_list(
        [
            ("content-type", b"text/plain; charset=utf-8"),
            ("content-length", str(len(body)).encode()),
        ]
    )
    resp = OutgoingResponse(headers)
    resp.set_status_code(status)
    outgoing = resp.body()
    ResponseOutparam.set(out, Ok(resp))
    with outgoing.write() as stream:
        # blocking-write-and-flush takes at most 4096 bytes per call.
        for i in range(0, len(body), 4096):
            stream.blocking_write_and_flush(body[i : i + 4096])
    OutgoingBody.finish(outgoing, None)
