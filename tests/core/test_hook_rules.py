"""Each hook combines the answers of several plugins by the rule its spec carries.

One ``test_hook_<name>`` per hook, each with two throwaway plugins; then pluggy's own features
through the core's calls: wrappers, old-style hookwrappers and tracing.  The plugins installed
in the environment answer too; the assertions look at what the throwaway ones add.
"""

from __future__ import annotations

import inspect
import logging
import re
from pathlib import Path
from typing import Any

import click
import pytest
from aiohttp import web
from click.testing import CliRunner
from marshmallow import Schema, fields

from restplug import (
    Backend,
    ConfigError,
    Denial,
    FilterMethod,
    Fragment,
    Identity,
    Problem,
    Resource,
    Route,
    Setting,
    SortMethod,
    hookimpl,
    positive_int,
)
from restplug.app import RESTPLUG, Restplug
from restplug.hookdocs import hook_names
from restplug.hookspecs import Combine
from restplug.plugins import PluginManager, call, call_sync, rule_of
from restplug.stores.sqlite import SQLiteStore
from restplug.testing import AllowWrites, isolated_environ

TESTS = Path(__file__).parents[1]


class MemoSchema(Schema):
    id = fields.Integer(required=True)
    text = fields.String(required=True)
    rank = fields.Integer(load_default=0)


class NoteSchema(MemoSchema):
    pass


MEMOS = Resource(name="memos", schema=MemoSchema, sorts=("rank",), default_order=("rank",))


class Toy:
    """A throwaway plugin named ``name``; what its hooks do goes to the shared ``log``."""

    def __init__(self, name: str, log: list[Any] | None = None) -> None:
        self.__name__ = name  # the name pluggy registers it under
        self.log = log if log is not None else []


class Memos(Toy):
    """Serves the ``memos`` resource: the stage of several tests."""

    @hookimpl
    def register_resources(self):
        return [MEMOS]


async def configure(tmp_path, *plugins, **env) -> Restplug:
    return await Restplug.configure(isolated_environ(tmp_path, env), plugins)


async def serve(aiohttp_client, tmp_path, *plugins, **env):
    return await aiohttp_client((await configure(tmp_path, *plugins, **env)).web_app())


def hello_route(path: str, answer: str) -> Route:
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": answer})

    return Route("GET", path, hello)


async def memo_ranks(client, query: str) -> list[int]:
    response = await client.get(f"/api/v1/memos?{query}")
    assert response.status == 200, await response.text()
    return [item["rank"] for item in (await response.json())["items"]]


# -- one test per hook ------------------------------------------------------------------------


async def test_hook_register_settings(tmp_path):
    class Sync(Toy):
        @hookimpl
        def register_settings(self):
            return [Setting("RESTPLUG_TOY_SYNC", 1, positive_int, "a plain plugin's")]

    class Async(Toy):
        @hookimpl
        async def register_settings(self):
            return [Setting("RESTPLUG_TOY_ASYNC", 2, positive_int, "an async plugin's")]

    class Nothing(Toy):
        @hookimpl
        async def register_settings(self):
            return None

    restplug = await configure(
        tmp_path, Sync("sync"), Async("async"), Nothing("nothing"), RESTPLUG_TOY_ASYNC="5"
    )
    assert (restplug.settings.toy_sync, restplug.settings.toy_async) == (1, 5)
    with pytest.raises(ConfigError, match="RESTPLUG_TOY_SYNC"):
        await configure(tmp_path, Sync("sync"), Async("async"), RESTPLUG_TOY_SYNC="zero")


async def test_hook_register_backends(tmp_path):
    def store(url, settings):
        return SQLiteStore(f"sqlite:///{tmp_path}/toy.db", timeout_ms=settings.query_timeout_ms)

    class Plain(Toy):
        @hookimpl
        def register_backends(self):
            return [Backend("store", ("toya",), store)]

    class Async(Toy):
        @hookimpl
        async def register_backends(self):
            return [Backend("store", ("toyb", "toyc"), store)]

    class Twin(Toy):
        @hookimpl
        async def register_backends(self):
            return [Backend("store", ("sqlite",), store)]

    plugins = Plain("toy_plain"), Async("toy_async")
    restplug = await configure(tmp_path, *plugins, RESTPLUG_STORE_URL="toyc://x")
    assert isinstance(restplug.backends["store"], SQLiteStore)
    # Every answer is labelled with its plugin: the choices a deployer is shown name them.
    with pytest.raises(ConfigError) as error:
        await configure(tmp_path, *plugins, RESTPLUG_STORE_URL="nope://x")
    for choice in ("toya:// (toy_plain)", "toyb:// (toy_async)", "toyc:// (toy_async)"):
        assert choice in str(error.value)
    with pytest.raises(ConfigError, match=r"several plugins \(sqlite_store, toy_twin\)"):
        await configure(tmp_path, *plugins, Twin("toy_twin"))


async def test_hook_register_resources(tmp_path, aiohttp_client):
    class Notes(Toy):
        @hookimpl
        async def register_resources(self):
            return [Resource(name="notes", schema=NoteSchema)]

    client = await serve(aiohttp_client, tmp_path, Memos("memos"), Notes("notes"), AllowWrites())
    for name in ("memos", "notes"):
        assert (await client.post(f"/api/v1/{name}", json={"id": 1, "text": "x"})).status == 201
        assert (await client.get(f"/api/v1/{name}/1")).status == 200
    with pytest.raises(ConfigError, match="two plugins declare the resource 'memos'"):
        await configure(tmp_path, Memos("one"), Memos("two"))


async def test_hook_register_filters(tmp_path, aiohttp_client):
    class AtLeast(Toy):
        @hookimpl
        def register_filters(self, resource):
            if resource.name != "memos":
                return None

            async def at_least(restplug, resource, value):
                return Fragment({"rank": {"$gte": value}})

            return [FilterMethod("rank_min", fields.Integer(), at_least)]

    class AtMost(Toy):
        @hookimpl
        async def register_filters(self, resource):
            async def at_most(restplug, resource, value):
                return Fragment({"rank": {"$lte": value}})

            return [FilterMethod("rank_max", fields.Integer(), at_most)]

    plugins = Memos("memos"), AllowWrites(), AtLeast("min"), AtMost("max")
    client = await serve(aiohttp_client, tmp_path, *plugins)
    for rank in range(1, 6):
        await client.post("/api/v1/memos", json={"id": rank, "text": "x", "rank": rank})
    assert await memo_ranks(client, "rank_min=2&rank_max=4") == [2, 3, 4]
    # One plugin answered None for the other resources: its parameter is unknown there.
    assert (await client.get("/api/v1/apps?rank_min=2")).status == 400
    assert (await client.get("/api/v1/apps?rank_max=2")).status == 200


async def test_hook_register_sorts(tmp_path, aiohttp_client):
    class TextDown(Toy):
        @hookimpl
        def register_sorts(self):
            return [SortMethod("text_down", lambda restplug, resource: [("text", -1)])]

    class RankDown(Toy):
        @hookimpl
        async def register_sorts(self, resource):
            return [SortMethod("rank_down", lambda restplug, resource: [("rank", -1)])]

    plugins = Memos("memos"), AllowWrites(), TextDown("text"), RankDown("rank")
    client = await serve(aiohttp_client, tmp_path, *plugins)
    for id, text, rank in [(1, "b", 1), (2, "a", 2), (3, "b", 3)]:
        await client.post("/api/v1/memos", json={"id": id, "text": text, "rank": rank})
    assert await memo_ranks(client, "order_by=text_down,rank_down") == [3, 1, 2]


async def test_hook_register_routes(tmp_path, aiohttp_client):
    class One(Toy):
        @hookimpl
        def register_routes(self):
            return [hello_route("/one", "one")]

    class Two(Toy):
        @hookimpl
        async def register_routes(self):
            return [hello_route("/two", "two"), hello_route("/three", "three")]

    client = await serve(aiohttp_client, tmp_path, One("one"), Two("two"))
    for name in ("one", "two", "three"):
        assert await (await client.get(f"/{name}")).json() == {"hello": name}


async def test_hook_describe_route(tmp_path, aiohttp_client):
    """Every answer is applied, in call order: for a status two plugins describe, the first
    plugin called (the one registered last) gives the description."""

    def describer(name: str, statuses: tuple[str, ...]) -> Toy:
        class Describer(Toy):
            @hookimpl
            async def describe_route(self, route):
                if route.path != "/hello":
                    return None
                return {"responses": {s: {"description": f"{s} by {name}"} for s in statuses}}

        return Describer(name)

    class Hello(Toy):
        @hookimpl
        def register_routes(self):
            return [hello_route("/hello", "world")]

    plugins = Hello("hello"), describer("a", ("418", "429")), describer("b", ("429",))
    client = await serve(aiohttp_client, tmp_path, *plugins)
    document = await (await client.get("/openapi.json")).json()
    responses = document["paths"]["/hello"]["get"]["responses"]
    assert responses["418"]["description"] == "418 by a"
    assert responses["429"]["description"] == "429 by b"


@web.middleware
async def stamp(request, handler):
    response = await handler(request)
    response.headers.add("X-Stamp", "plain")
    return response


async def test_hook_register_middlewares(tmp_path, aiohttp_client):
    """The lists are concatenated in call order, and the first middleware is the outermost:
    the plugin called first (registered last) sees the response last."""

    class Plain(Toy):
        @hookimpl
        def register_middlewares(self):
            return [stamp]

    class Async(Toy):
        @hookimpl
        async def register_middlewares(self):
            @web.middleware
            async def stamp_twice(request, handler):
                response = await handler(request)
                response.headers.add("X-Stamp", "async")
                response.headers.add("X-Stamp", "async again")
                return response

            return [stamp_twice]

    client = await serve(aiohttp_client, tmp_path, Plain("plain"), Async("async"))
    response = await client.get("/health/live")
    assert response.headers.getall("X-Stamp") == ["plain", "async", "async again"]


def test_hook_register_commands():
    """Every plugin adds its commands; the hook runs outside the event loop, so an async
    implementation is refused."""

    class Greet(Toy):
        @hookimpl
        def register_commands(self, cli):
            @cli.command(f"{self.__name__}-hello")
            def hello():
                click.echo(f"hello from {self.__name__}")

    class Async(Toy):
        @hookimpl
        async def register_commands(self, cli):
            raise AssertionError("never run")

    pm = PluginManager()
    pm.register(Greet("one"))
    pm.register(Greet("two"))
    group = click.Group()
    call_sync(pm, "register_commands", cli=group)
    for name in ("one", "two"):
        result = CliRunner().invoke(group, [f"{name}-hello"])
        assert result.output == f"hello from {name}\n"
    pm.register(Async("async"))
    with pytest.raises(TypeError, match="register_commands is async"):
        call_sync(pm, "register_commands", cli=click.Group())


async def test_hook_startup(tmp_path, aiohttp_client):
    """Every plugin starts, in call order (the one registered last first); an exception stops
    start-up, and the plugins after it are not started."""
    log: list[str] = []

    class Starter(Toy):
        fails = False

        @hookimpl
        async def startup(self):
            if self.fails:
                raise RuntimeError(f"{self.__name__} cannot start")
            self.log.append(self.__name__)

    early = Starter("early", log)
    plugins = Starter("late", log), early
    await serve(aiohttp_client, tmp_path, *plugins)
    assert log == ["early", "late"]
    log.clear()
    early.fails = True
    restplug = await configure(tmp_path, *plugins)
    try:
        with pytest.raises(RuntimeError, match="early cannot start"):
            await restplug.start()
    finally:
        await restplug.stop()
    assert log == []


async def test_hook_shutdown(tmp_path, aiohttp_client, caplog):
    """A failing plugin is logged with its name; the plugins after it still shut down."""
    log: list[str] = []

    class Broken(Toy):
        @hookimpl
        def shutdown(self):
            raise RuntimeError("cannot stop")

    class Stopper(Toy):
        @hookimpl
        async def shutdown(self):
            self.log.append(self.__name__)

    client = await serve(
        aiohttp_client, tmp_path, Stopper("last", log), Broken("broken"), Stopper("first", log)
    )
    with caplog.at_level(logging.ERROR, logger="restplug.plugins"):
        await client.close()
    assert log == ["first", "last"]
    assert "the shutdown hook of plugin broken failed" in caplog.text


class Authenticator(Toy):
    """Knows the token ``<its name>-token``; counts the requests it was asked about."""

    @hookimpl
    async def authenticate(self, request):
        self.log.append(self.__name__)
        if request.headers.get("Authorization") == f"Bearer {self.__name__}-token":
            return Identity(self.__name__)
        return None


def whoami_route() -> Route:
    async def whoami(request: web.Request) -> web.Response:
        identity = await request.app[RESTPLUG].identity(request)
        return web.json_response({"subject": identity.subject if identity else None})

    return Route("GET", "/whoami", whoami)


class WhoAmI(Toy):
    @hookimpl
    def register_routes(self):
        return [whoami_route()]


async def test_hook_authenticate(tmp_path, aiohttp_client):
    """The first answer that is not None wins: an async plugin answering None lets the next
    one answer, and the plugins after an answer are not asked."""
    asked: list[str] = []
    plugins = WhoAmI("who"), Authenticator("second", asked), Authenticator("first", asked)
    client = await serve(aiohttp_client, tmp_path, *plugins)

    async def whoami(token: str | None) -> str | None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        asked.clear()
        return (await (await client.get("/whoami", headers=headers)).json())["subject"]

    assert await whoami("second-token") == "second"
    assert asked == ["first", "second"]
    assert await whoami("first-token") == "first"
    assert asked == ["first"]
    assert await whoami(None) is None
    assert asked == ["first", "second"]


async def test_hook_permission(tmp_path, aiohttp_client):
    """Every plugin votes: a denial wins over an allowing vote, whatever the order; a True
    allows; with only abstentions, a write is refused."""

    class Voter(Toy):
        @hookimpl
        async def permission(self, request, action):
            vote = request.headers.get(f"X-{self.__name__}")
            if vote == "deny":
                return Denial(451, f"{self.__name__} says no", {"X-Why": self.__name__})
            return {"allow": True, "no": False}.get(vote) if action == "write" else None

    client = await serve(aiohttp_client, tmp_path, Memos("memos"), Voter("a"), Voter("b"))

    async def write(id: int, **votes: str):
        headers = {f"X-{name}": vote for name, vote in votes.items()}
        return await client.post("/api/v1/memos", json={"id": id, "text": "x"}, headers=headers)

    assert (await write(1)).status == 403
    assert (await write(1, a="allow")).status == 201
    assert (await write(2, a="allow", b="allow")).status == 201
    assert (await write(3, a="allow", b="no")).status == 403
    for votes in ({"a": "allow", "b": "deny"}, {"a": "deny", "b": "allow"}):
        denied = await write(4, **votes)
        assert denied.status == 451 and denied.content_type == "application/problem+json"
    # Both deny: the first plugin called (registered last) gives the answer.
    denied = await write(4, a="deny", b="deny")
    assert denied.headers["X-Why"] == "b" and (await denied.json())["detail"] == "b says no"


async def test_hook_documents_changed(tmp_path, aiohttp_client, caplog):
    """Every plugin is told of each write, with the changed documents; a failing one is logged
    and neither fails the write nor keeps the others from being told."""
    told: list[tuple[str, object]] = []

    class Listener(Toy):
        @hookimpl
        async def documents_changed(self, changes):
            for change in changes:
                self.log.append((self.__name__, change.document and change.document["text"]))

    class Broken(Toy):
        @hookimpl
        def documents_changed(self):
            raise RuntimeError("a broken listener")

    plugins = Memos("memos"), AllowWrites(), Listener("last", told), Broken("broken")
    plugins += (Listener("first", told),)
    client = await serve(aiohttp_client, tmp_path, *plugins)
    with caplog.at_level(logging.ERROR, logger="restplug.plugins"):
        assert (await client.post("/api/v1/memos", json={"id": 1, "text": "hi"})).status == 201
    assert told == [("first", "hi"), ("last", "hi")]
    assert "the documents_changed hook of plugin broken failed" in caplog.text
    assert (await client.delete("/api/v1/memos/1")).status == 204
    assert told[2:] == [("first", None), ("last", None)]


async def test_hook_load_demo_data(tmp_path):
    """Every plugin loads its demo data and answers what it wrote per resource; the core
    collects the answers in call order, leaving out the plugins with nothing to load."""

    class Loader(Toy):
        @hookimpl
        async def load_demo_data(self, restplug, count, seed, if_empty):
            memos = restplug.collection("memos")
            if if_empty and await memos.count():
                return {"memos": 0}
            for n in range(count):
                id = ord(self.__name__) * 1000 + seed * 100 + n
                await memos.insert(id, {"id": id, "text": self.__name__})
            return {"memos": count}

    class Nothing(Toy):
        @hookimpl
        def load_demo_data(self):
            return None

    plugins = Memos("memos"), Loader("b"), Nothing("none"), Loader("a")
    # The catalogue's own demo data is not this test's.
    restplug = await configure(tmp_path, *plugins, RESTPLUG_DISABLE_PLUGINS="catalog,catalog_tasks")
    await restplug.start()
    try:
        kwargs = {"restplug": restplug, "count": 2, "if_empty": False}
        assert await call(restplug.pm, "load_demo_data", seed=1, **kwargs) == [
            {"memos": 2},
            {"memos": 2},
        ]
        assert await restplug.collection("memos").count() == 4
        kwargs["if_empty"] = True
        answers = await call(restplug.pm, "load_demo_data", seed=2, **kwargs)
        assert answers == [{"memos": 0}, {"memos": 0}]
    finally:
        await restplug.stop()


# -- pluggy's features through the core's calls ------------------------------------------------


async def test_a_wrapper_on_startup_sees_and_wraps_the_answers(tmp_path, aiohttp_client):
    log: list[str] = []

    class Starter(Toy):
        @hookimpl
        async def startup(self):
            self.log.append("started")

    class Wrapper(Toy):
        @hookimpl(wrapper=True)
        def startup(self):
            self.log.append("before")
            answers = yield
            # Async answers are still coroutines here: the core awaits what is returned.
            names = [answer.__qualname__ for answer in answers if inspect.iscoroutine(answer)]
            self.log.append(f"saw {names.count(Starter.startup.__qualname__)} Starter")

            async def after():
                self.log.append("after every plugin started")

            return [*answers, after()]

    await serve(aiohttp_client, tmp_path, Starter("starter", log), Wrapper("wrapper", log))
    assert log == ["before", "saw 1 Starter", "started", "after every plugin started"]


async def test_a_wrapper_on_register_routes_adds_a_route(tmp_path, aiohttp_client):
    class Wrapper(Toy):
        @hookimpl(wrapper=True)
        def register_routes(self):
            answers = yield
            return [*answers, [hello_route("/wrapped", "by a wrapper")]]

    client = await serve(aiohttp_client, tmp_path, Wrapper("wrapper"))
    assert await (await client.get("/wrapped")).json() == {"hello": "by a wrapper"}


async def test_an_old_style_hookwrapper_runs(tmp_path):
    class OldStyle(Toy):
        @hookimpl(hookwrapper=True)
        def register_settings(self):
            outcome = yield
            setting = Setting("RESTPLUG_TOY_WRAPPED", 3, positive_int, "added by a wrapper")
            outcome.force_result([*outcome.get_result(), [setting]])

    restplug = await configure(tmp_path, OldStyle("old"))
    assert restplug.settings.toy_wrapped == 3


async def test_a_wrapper_on_authenticate_runs_around_each_plugins_turn(tmp_path, aiohttp_client):
    """A hook combined one plugin at a time: the wrapper sees each plugin's answer alone and
    can replace it (here, refusing one subject outright)."""
    turns: list[int] = []

    class Gate(Toy):
        @hookimpl(wrapper=True)
        def authenticate(self):
            answers = yield
            turns.append(len(answers))

            async def refuse_second(answer):
                identity = await answer
                if identity is not None and identity.subject == "second":
                    raise Problem(401, "second is locked out")
                return identity

            return [refuse_second(answer) for answer in answers]

    asked: list[str] = []
    plugins = WhoAmI("who"), Authenticator("second", asked), Authenticator("first", asked)
    client = await serve(aiohttp_client, tmp_path, *plugins, Gate("gate"))
    locked = await client.get("/whoami", headers={"Authorization": "Bearer second-token"})
    assert locked.status == 401 and (await locked.json())["detail"] == "second is locked out"
    assert turns and set(turns) == {1}  # around each plugin's turn: one answer each
    ok = await client.get("/whoami", headers={"Authorization": "Bearer first-token"})
    assert (await ok.json())["subject"] == "first"


async def test_tracing_shows_the_hook_calls(tmp_path, aiohttp_client):
    restplug = await configure(tmp_path, WhoAmI("who"), Authenticator("auth"))
    lines: list[str] = []
    restplug.pm.trace.root.setwriter(lines.append)
    undo = restplug.pm.enable_tracing()
    try:
        client = await aiohttp_client(restplug.web_app())
        await client.get("/whoami", headers={"Authorization": "Bearer auth-token"})
    finally:
        undo()
    called = {message.split()[0] for message in lines}
    assert {"startup", "authenticate", "permission"} <= called
    assert any(message.strip().startswith("finish authenticate -->") for message in lines)


# -- the rules themselves ------------------------------------------------------------------------


def test_every_hook_declares_its_rule_and_has_a_test_named_for_it():
    pm = PluginManager()
    sources = "\n".join(path.read_text() for path in TESTS.rglob("*.py"))
    for name in hook_names():
        assert isinstance(rule_of(getattr(pm.hook, name)), Combine)
        assert re.search(rf"def test_hook_{name}\(", sources), f"write test_hook_{name}"
