"""The fake JS layer has the documented shapes, and the real Workers SDK runs on it."""

import sys
from typing import Any

import pytest

pytestmark = pytest.mark.usefixtures("jsfake")


# ---------------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------------


def test_the_real_sdk_imports_on_the_fake():
    import asgi
    import pyodide
    import workers
    from workers import DurableObject, Response, WorkerEntrypoint

    assert pyodide.__version__ == "0.28.2"
    assert workers.__file__.endswith("site-packages/workers/__init__.py")
    assert asgi is sys.modules["workers.asgi"]
    assert issubclass(Response, sys.modules["pyodide.http"].FetchResponse)
    assert DurableObject.__module__ == WorkerEntrypoint.__module__ == "workers.entrypoints"


def test_a_js_global_that_is_not_faked_fails_loudly():
    with pytest.raises(ImportError):
        from js import Blob  # noqa: F401


# ---------------------------------------------------------------------------------------------
# Value model
# ---------------------------------------------------------------------------------------------


def test_to_js_follows_pyodide(jsfake):
    from js import Object
    from pyodide.ffi import JsProxy, jsnull, to_js

    as_map = to_js({"a": 1})
    assert as_map.constructor.name == "Map"
    assert dict(as_map) == {"a": 1}

    obj = to_js({"a": [1, {"b": None}], "c": jsnull}, dict_converter=Object.fromEntries)
    assert isinstance(obj, JsProxy)
    assert obj.constructor.name == "Object"
    assert obj.a.constructor.name == "Array"
    assert obj.a.length == 2
    assert obj.a[1].b is None
    assert obj.c is jsnull
    assert obj.to_py() == {"a": [1, {"b": None}], "c": jsnull}

    assert to_js(None) is None
    assert to_js("s") == "s"
    assert to_js((1, 2)).constructor.name == "Array"
    assert to_js(obj) is obj
    assert to_js(b"\x01\x02").to_bytes() == b"\x01\x02"


def test_plain_objects_are_not_python_containers(jsfake):
    obj = jsfake.js_value({"a": 1})
    with pytest.raises(TypeError):
        obj["a"]
    with pytest.raises(TypeError):
        iter(obj)
    with pytest.raises(AttributeError):
        _ = obj.missing
    assert obj.object_keys().to_py() == ["a"]
    assert str(obj) == "[object Object]"
    assert obj != jsfake.js_value({"a": 1})  # == is JS identity


def test_to_py_uses_the_default_converter_for_class_instances(jsfake):
    from js import Date

    value = jsfake.js_value({"when": Date.new(1_000), "n": 2.0})
    assert value.to_py()["when"].constructor.name == "Date"
    assert value.to_py()["n"] == 2
    assert isinstance(value.to_py()["n"], int)

    def convert(v: Any, convert: Any, cache: Any) -> Any:
        return ("date", v.getTime())

    assert value.to_py(default_converter=convert) == {"when": ("date", 1000), "n": 2}


def test_python_objects_reach_js_as_pyproxies(jsfake):
    from pyodide.ffi import JsException

    _client, server = jsfake.WebSocketPair().object_values()
    server.accept()
    with pytest.raises(JsException) as caught:
        server.serializeAttachment({"user": "u1"})
    assert caught.value.name == "DataCloneError"
    with pytest.raises(JsException):
        server.send(b"bytes are not a JS buffer")


def test_keyword_arguments_become_the_trailing_init_object():
    from js import Response

    response = Response.new("hi", status=202, statusText="Accepted")
    assert (response.status, response.statusText) == (202, "Accepted")
    with pytest.raises(Exception, match="not a body"):
        Response.new(status=201)  # the init object lands in the body position


def test_create_proxy_buffers():
    from pyodide.ffi import JsException, create_proxy

    proxy = create_proxy(b"abc")
    view = proxy.getBuffer()
    proxy.destroy()
    assert view.data.constructor.name == "Uint8Array"
    assert view.data.slice().to_bytes() == b"abc"
    view.release()
    with pytest.raises(JsException, match=r"after PyBufferView\.release"):
        view.data.to_bytes()


# ---------------------------------------------------------------------------------------------
# Fetch API objects
# ---------------------------------------------------------------------------------------------


def test_headers_shapes():
    from js import Headers
    from pyodide.ffi import JsException, jsnull

    headers = Headers.new([("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("X-A", "1")])
    headers.append("x-a", "2")
    assert headers.get("x-a") == "1, 2"
    assert headers.get("missing") is jsnull
    assert headers.getSetCookie().to_py() == ["a=1", "b=2"]
    assert [tuple(pair) for pair in headers] == [
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
        ("x-a", "1, 2"),
    ]
    with pytest.raises(JsException):
        Headers.new({"x-a": "1"})  # a Python dict iterates its keys


def test_url_shapes():
    from js import URL
    from pyodide.ffi import JsException

    url = URL.new("HTTPS://Example.com:443/a/../b%20c/d e?x=1&y=two#frag")
    assert url.protocol == "https:"
    assert url.host == "example.com"
    assert url.pathname == "/b%20c/d%20e"
    assert url.search == "?x=1&y=two"
    assert url.hash == "#frag"
    assert url.searchParams.get("y") == "two"
    assert URL.new("http://h").pathname == "/"
    with pytest.raises(JsException):
        URL.new("/relative")


@pytest.mark.anyio
async def test_request_and_response_bodies(jsfake):
    from js import Request, Response
    from pyodide.ffi import JsException, jsnull

    request = Request.new("https://x.test/p", method="post", body='{"a":1}')
    assert request.method == "POST"
    assert request.headers.get("content-type") == "text/plain;charset=UTF-8"
    chunks = [chunk.to_bytes() async for chunk in request.body]
    assert b"".join(chunks) == b'{"a":1}'
    assert request.bodyUsed
    with pytest.raises(JsException, match="already been used"):
        await request.text()

    assert Request.new("https://x.test/").body is jsnull
    with pytest.raises(JsException):
        Request.new("https://x.test/", method="GET", body="x")

    response = Response.json(jsfake.js_value({"ok": True}), status=201)
    assert response.status == 201
    assert response.headers.get("content-type") == "application/json"
    assert (await response.json()).to_py() == {"ok": True}
    with pytest.raises(JsException) as caught:
        Response.new("x", status=204)
    assert caught.value.name == "TypeError"
    with pytest.raises(JsException) as caught:
        Response.new(None, status=700)
    assert caught.value.name == "RangeError"


def test_sdk_response_wraps_a_js_response():
    from workers import Response

    response = Response("x", status=201, headers={"x-a": "1"})
    assert response.status == 201
    assert response.js_object.constructor.name == "Response"
    assert response.headers["x-a"] == "1"
    assert response.js_object.headers.get("content-type") == "text/plain;charset=UTF-8"


# ---------------------------------------------------------------------------------------------
# ASGI
# ---------------------------------------------------------------------------------------------


def _app() -> Any:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI()

    @app.get("/items")
    async def items(q: str, request: Request) -> dict[str, Any]:
        return {"q": q, "env": request.scope["env"].ENVIRONMENT}

    @app.post("/echo")
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return {"got": body}

    @app.get("/cookies")
    async def cookies() -> JSONResponse:
        response = JSONResponse({"ok": True})
        response.set_cookie("a", "1")
        response.set_cookie("b", "2")
        return response

    return app


@pytest.mark.anyio
async def test_asgi_fetch_serves_a_fastapi_app(jsfake):
    import asgi
    from workers import Request

    app = _app()
    env = jsfake.make_env(ENVIRONMENT="test")

    response = await asgi.fetch(
        app, Request(jsfake.make_request("https://api.test/items?q=a%20b")), env
    )
    assert response.constructor.name == "Response"
    assert response.status == 200
    assert response.headers.get("content-type") == "application/json"
    assert (await response.json()).to_py() == {"q": "a b", "env": "test"}

    post = jsfake.make_request(
        "https://api.test/echo",
        method="POST",
        headers={"content-type": "application/json"},
        body=b'{"x": [1, 2]}',
    )
    response = await asgi.fetch(app, post, env)  # a raw js.Request works too
    assert response.status == 200
    assert await response.text() == '{"got":{"x":[1,2]}}'

    response = await asgi.fetch(app, jsfake.make_request("https://api.test/cookies"), env)
    cookies = response.headers.getSetCookie().to_py()
    assert [c.split(";")[0] for c in cookies] == ["a=1", "b=2"]

    response = await asgi.fetch(app, jsfake.make_request("https://api.test/nope"), env)
    assert response.status == 404


@pytest.mark.anyio
async def test_asgi_streaming_response(jsfake):
    import asgi
    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse

    app = FastAPI()

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> Any:
            yield b"one,"
            yield b"two"

        return StreamingResponse(chunks(), media_type="text/plain")

    response = await asgi.fetch(app, jsfake.make_request("https://api.test/stream"), None)
    assert response.body.constructor.name == "ReadableStream"
    assert await response.text() == "one,two"
    await jsfake.drain_global_wait_until()


# ---------------------------------------------------------------------------------------------
# D1
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def d1(jsfake) -> Any:
    db = jsfake.FakeD1Database()
    db.connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, note TEXT, b BLOB)")
    return db


@pytest.mark.anyio
async def test_d1_through_the_sdk_wrapper(jsfake, d1):
    from workers.rpc import _EnvWrapper

    env = _EnvWrapper(jsfake.make_env(DB=d1))
    inserted = (
        await env.DB.prepare("INSERT INTO t (name, note) VALUES (?, ?)").bind("a", None).run()
    )
    assert inserted["success"] is True
    assert inserted["meta"]["changes"] == 1
    assert inserted["meta"]["last_row_id"] == 1
    assert set(inserted["meta"]) >= {"duration", "rows_read", "rows_written", "changed_db"}

    result = await env.DB.prepare("SELECT id, name, note FROM t WHERE name = ?").bind("a").all()
    assert isinstance(result, dict)
    assert result["results"] == [{"id": 1, "name": "a", "note": None}]
    assert result.results[0].name == "a"  # SDK JsDict allows attribute access

    assert await env.DB.prepare("SELECT name FROM t").first("name") == "a"
    assert await env.DB.prepare("SELECT * FROM t WHERE id = 99").first() is None


@pytest.mark.anyio
async def test_d1_batch_is_atomic(jsfake, d1):
    from pyodide.ffi import JsException
    from workers.rpc import _EnvWrapper

    env = _EnvWrapper(jsfake.make_env(DB=d1))
    insert = env.DB.prepare("INSERT INTO t (id, name) VALUES (?, ?)")
    results = await env.DB.batch([insert.bind(1, "a"), insert.bind(2, "b")])
    assert [r["meta"]["changes"] for r in results] == [1, 1]
    with pytest.raises(JsException, match="UNIQUE"):
        await env.DB.batch([insert.bind(3, "c"), insert.bind(1, "dup")])
    assert d1.query("SELECT id FROM t ORDER BY id") == [{"id": 1}, {"id": 2}]


@pytest.mark.anyio
async def test_d1_raw_binding_rejects_undefined_and_python_lists(d1):
    from pyodide.ffi import JsException

    statement = d1.prepare("INSERT INTO t (name) VALUES (?)")
    with pytest.raises(JsException, match="D1_TYPE_ERROR"):
        statement.bind(None)
    with pytest.raises(JsException, match=r"statements\.map is not a function"):
        await d1.batch([statement.bind("a")])
    raw = await d1.prepare("SELECT 1 AS one").all()
    assert raw.constructor.name == "Object"
    assert raw.results.constructor.name == "Array"
    with pytest.raises(JsException, match="D1_ERROR"):
        await d1.prepare("SELECT * FROM missing").all()


# ---------------------------------------------------------------------------------------------
# Durable Object state and storage
# ---------------------------------------------------------------------------------------------


def test_do_sql_through_the_sdk_context(jsfake):
    from pyodide.ffi import JsException
    from workers.entrypoints import DurableObjectContext

    state = jsfake.FakeDurableObjectState(name="room")
    ctx = DurableObjectContext(state)
    sql = ctx.storage.sql
    sql.exec("CREATE TABLE hits (at INTEGER, who TEXT); CREATE INDEX hits_at ON hits (at)")
    sql.exec("INSERT INTO hits VALUES (?, ?), (?, ?)", 1, "a", 2, None)
    rows = sql.exec("SELECT at, who FROM hits ORDER BY at").toArray()
    assert rows == [{"at": 1, "who": "a"}, {"at": 2, "who": None}]
    assert sql.exec("SELECT count(*) AS n FROM hits").one() == {"n": 2}
    assert [row["at"] for row in sql.exec("SELECT at FROM hits")] == [1, 2]
    cursor = sql.exec("SELECT at FROM hits")
    assert cursor.columnNames == ["at"]
    assert cursor.rowsRead == 2

    with pytest.raises(JsException, match="exactly one"):
        sql.exec("SELECT at FROM hits").one()
    with pytest.raises(JsException, match="transactionSync"):
        sql.exec("BEGIN TRANSACTION")

    def failing() -> None:
        sql.exec("DELETE FROM hits")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        ctx.storage.transactionSync(failing)
    assert sql.exec("SELECT count(*) AS n FROM hits").one() == {"n": 2}
    assert ctx.storage.transactionSync(lambda: {"done": True}) == {"done": True}


@pytest.mark.anyio
async def test_do_kv_and_alarms(jsfake):
    from workers.entrypoints import DurableObjectContext

    ctx = DurableObjectContext(jsfake.FakeDurableObjectState(name="kv"))
    await ctx.storage.put("k", {"a": [1, None]})
    assert await ctx.storage.get("k") == {"a": [1, None]}
    assert await ctx.storage.get("missing") is None
    assert await ctx.storage.getAlarm() is None
    await ctx.storage.setAlarm(1_700_000_000_000)
    assert await ctx.storage.getAlarm() == 1_700_000_000_000
    await ctx.storage.deleteAlarm()
    assert await ctx.storage.getAlarm() is None


# ---------------------------------------------------------------------------------------------
# WebSockets and hibernation
# ---------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_hibernatable_websockets(jsfake):
    from js import Object, WebSocketPair, WebSocketRequestResponsePair
    from pyodide.ffi import JsException, jsnull, to_js
    from workers import Response

    state = jsfake.FakeDurableObjectState(name="swarm")
    client, server = WebSocketPair.new().object_values()
    assert (client.constructor.name, server.constructor.name) == ("WebSocket", "WebSocket")
    with pytest.raises(JsException, match="not of type 'Array'"):
        state.acceptWebSocket(server, ["tag"])
    with pytest.raises(JsException, match="10 tags"):
        state.acceptWebSocket(server, to_js([f"t{i}" for i in range(11)]))
    with pytest.raises(JsException, match="256"):
        state.acceptWebSocket(server, to_js(["x" * 257]))
    state.acceptWebSocket(server, to_js(["user:1", "room"]))
    assert state.getTags(server).to_py() == ["user:1", "room"]
    assert state.getWebSockets("room").to_py() == [server]
    assert state.getWebSockets("other").to_py() == []

    assert server.deserializeAttachment() is jsnull
    server.serializeAttachment(to_js({"user": "u1"}, dict_converter=Object.fromEntries))
    assert server.deserializeAttachment().to_py() == {"user": "u1"}

    upgrade = Response(None, status=101, web_socket=client)
    assert upgrade.status == 101
    assert upgrade.js_object.webSocket is client

    state.setWebSocketAutoResponse(WebSocketRequestResponsePair.new("ping", "pong"))
    assert state.getWebSocketAutoResponseTimestamp(server) is jsnull

    class Target:
        def __init__(self) -> None:
            self.messages: list[Any] = []

        async def webSocketMessage(self, ws: Any, message: Any) -> None:
            self.messages.append(message)
            ws.send("echo:" + message)

    target = Target()
    assert await state.deliver_message(server, "ping", target) is False
    assert await state.deliver_message(server, "hi", target) is True
    assert target.messages == ["hi"]
    assert client.received == ["pong", "echo:hi"]
    assert state.getWebSocketAutoResponseTimestamp(server).constructor.name == "Date"

    server.close(1000, "bye")
    with pytest.raises(JsException):
        server.send("late")
    with pytest.raises(JsException):
        client.close(1001, "reserved code")


# ---------------------------------------------------------------------------------------------
# Durable Object namespaces and stubs
# ---------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_stub_rpc_with_a_js_target(jsfake):
    from workers.rpc import _EnvWrapper

    class Target:
        def __init__(self) -> None:
            self.seen: list[Any] = []

        async def join(self, data: Any) -> Any:
            self.seen.append(data)
            return jsfake.js_value({"joined": data.user, "n": None})

    target = Target()
    namespace = jsfake.FakeDurableObjectNamespace(target)
    env = _EnvWrapper(jsfake.make_env(SWARM=namespace))

    stub = env.SWARM.getByName("s1")
    assert await stub.join({"user": "u1"}) == {"joined": "u1", "n": None}
    assert target.seen[0].constructor.name == "Object"  # the target gets JS values
    assert namespace.calls[0].method == "join"
    assert namespace.calls[0].name == "s1"
    same = env.SWARM.get(env.SWARM.idFromName("s1"))
    assert await same.join({"user": "u2"}) == {"joined": "u2", "n": None}

    with pytest.raises(TypeError):
        await stub.join(("a", "tuple"))
    with pytest.raises(TypeError):
        await stub.join(bytearray(b"x"))


@pytest.mark.anyio
async def test_stub_rpc_and_fetch_with_a_python_durable_object(jsfake):
    from pyodide.ffi import JsException
    from workers import DurableObject, Response
    from workers.rpc import _EnvWrapper

    class Counter(DurableObject):
        async def add(self, amount: int, meta: dict[str, Any]) -> dict[str, Any]:
            sql = self.ctx.storage.sql
            sql.exec("CREATE TABLE IF NOT EXISTS c (n INTEGER)")
            sql.exec("INSERT INTO c VALUES (?)", amount)
            total = sql.exec("SELECT sum(n) AS total FROM c").one()["total"]
            return {"total": total, "tag": meta["tag"], "none": None}

        async def boom(self) -> None:
            raise ValueError("bad input")

        async def fetch(self, request: Any) -> Response:
            return Response(f"{request.method} {request.url}", status=200)

    def make(object_id: Any) -> Counter:
        return Counter(jsfake.FakeDurableObjectState(object_id), jsfake.make_env())

    namespace = jsfake.FakeDurableObjectNamespace(factory=make, python_entrypoint=True)
    env = _EnvWrapper(jsfake.make_env(COUNTER=namespace))
    stub = env.COUNTER.getByName("c1")
    assert await stub.add(2, {"tag": "x"}) == {"total": 2, "tag": "x", "none": None}
    assert await stub.add(3, {"tag": "y"}) == {"total": 5, "tag": "y", "none": None}
    # RPC errors cross as JS errors: the SDK's binding wrapper does not map them back.
    with pytest.raises(JsException, match="ValueError: bad input") as caught:
        await stub.boom()
    assert caught.value.name == "Error"

    response = await stub.fetch("https://do.internal/path", method="POST", body="x")
    assert response.status == 200
    assert await response.text() == "POST https://do.internal/path"


# ---------------------------------------------------------------------------------------------
# Entrypoint, context, outbound fetch
# ---------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_worker_entrypoint_context_and_fetch(jsfake):
    from workers import Response, WorkerEntrypoint, fetch

    calls: list[Any] = []

    async def upstream(request: Any) -> Any:
        calls.append((request.method, request.url, request.headers.get("x-k")))
        return Response("pong", headers={"x-up": "1"})

    jsfake.set_fetch_handler(upstream)

    class Default(WorkerEntrypoint):
        async def fetch(self, request: Any) -> Response:
            done: list[str] = []

            async def later() -> None:
                done.append("yes")

            self.ctx.waitUntil(later())
            reply = await fetch("https://up.test/ping", method="PUT", headers={"x-k": "v"})
            return Response(await reply.text() + f" {self.env.ENVIRONMENT}")

        async def scheduled(self, controller: Any, env: Any, ctx: Any) -> str:
            return f"{controller.cron}@{controller.scheduledTime}"

    ctx = jsfake.FakeExecutionContext()
    worker = Default(ctx, jsfake.make_env(ENVIRONMENT="test"))
    assert ctx.patched
    response = await worker.fetch(jsfake.make_request("https://w.test/"))
    assert await response.text() == "pong test"
    assert calls == [("PUT", "https://up.test/ping", "v")]
    assert len(await ctx.drain()) == 1

    controller = jsfake.make_controller("*/5 * * * *", 1_700_000_000_000)
    assert await worker.scheduled(controller, worker.env, ctx) == "*/5 * * * *@1700000000000"
    jsfake.set_fetch_handler(None)


def test_incoming_request_headers_are_immutable(jsfake):
    from pyodide.ffi import JsException

    request = jsfake.make_request("https://w.test/", headers={"x-a": "1"})
    assert request.cf.colo == "LHR"
    with pytest.raises(JsException, match="immutable"):
        request.headers.set("x-a", "2")


@pytest.mark.anyio
async def test_cloudflare_workers_module_env_and_imports(jsfake):
    import workers
    from pyodide.ffi import JsException

    jsfake.set_worker_env(jsfake.make_env(ENVIRONMENT="global"))
    assert workers.env.ENVIRONMENT == "global"
    with workers.patch_env(ENVIRONMENT="patched"):
        assert workers.env.ENVIRONMENT == "patched"
    assert workers.env.ENVIRONMENT == "global"

    jsfake.register_js_module("my-module", jsfake.js_value({"answer": 42}))
    assert workers.import_from_javascript("my-module").answer == 42
    with pytest.raises(ImportError):
        workers.import_from_javascript("missing-module")
    with pytest.raises(JsException):
        await sys.modules["_pyodide_entrypoint_helper"].doAnImport("missing-module")


def test_redirects_and_status_validation():
    from workers import Response

    redirect = Response.redirect("https://x.test/next", 301)
    assert redirect.status == 301
    assert redirect.headers.get("location") == "https://x.test/next"
    with pytest.raises(ValueError, match="redirect status"):
        Response.redirect("https://x.test/", 200)


@pytest.mark.anyio
async def test_d1_first_raw_and_exec(jsfake, d1):
    from pyodide.ffi import JsException

    result = await d1.exec("INSERT INTO t (name, b) VALUES ('a', x'0102');\nSELECT 1;")
    assert result.count == 2
    row = await d1.prepare("SELECT name, b FROM t").first()
    assert row.to_py() == {"name": "a", "b": [1, 2]}  # BLOBs read back as arrays of bytes
    with pytest.raises(JsException, match="D1_COLUMN_NOTFOUND"):
        await d1.prepare("SELECT name FROM t").first("nope")
    rows = await d1.prepare("SELECT id, name FROM t").raw(columnNames=True)
    assert rows.to_py() == [["id", "name"], [1, "a"]]
    with pytest.raises(JsException, match="only one statement"):
        await d1.prepare("SELECT 1; SELECT 2").all()


def test_sql_cursor_raw_and_reserved_tables(jsfake):
    from pyodide.ffi import JsException

    storage = jsfake.FakeDurableObjectStorage()
    storage.sql.exec("CREATE TABLE x (a INTEGER, b BLOB, c REAL)")
    storage.sql.exec("INSERT INTO x VALUES (?, ?, ?)", 1, jsfake.Uint8Array(b"\x00\x01"), 2.0)
    row = storage.sql.exec("SELECT a, b, c FROM x").one()
    assert row.b.constructor.name == "ArrayBuffer"
    assert row.b.to_bytes() == b"\x00\x01"
    assert row.c == 2  # an integral JS number reaches Python as int
    assert isinstance(row.c, int)
    assert [list(r) for r in storage.sql.exec("SELECT a, c FROM x").raw()] == [[1, 2]]
    with pytest.raises(JsException, match="SQLITE_AUTH"):
        storage.sql.exec("CREATE TABLE _cf_mine (a)")
    with pytest.raises(JsException, match="boolean"):
        storage.sql.exec("SELECT ?", True)
