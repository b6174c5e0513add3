"""The REST API, with Kafka Connect's paths, status codes and bodies, as one Starlette ASGI app.

Shapes follow ``RootResource``, ``ConnectorsResource``, ``ConnectorPluginsResource`` and
``ConnectExceptionMapper``: errors are ``{"error_code": <status>, "message": …}``; create is
201 with ``Location``; pause / resume / topic reset are 202, stop / delete / task restart 204;
``POST …/restart`` is 204 unless ``includeTasks`` or ``onlyFailed`` is true (then 202 with the
status). Query booleans are read like JAX-RS's ``Boolean.valueOf`` (``True`` works); a trailing
slash is tolerated; ``OPTIONS`` on any path answers with the methods it allows (``options``).
Every request holds the kernel lock, so the simulation never runs under it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sim.connect.errors import BadRequestError, ConnectError, ConnectRestError, NotFoundError
from sim.connect.herder import TARGET_STATES, Herder
from sim.connect.plugins import VERSION
from sim.errors import ConfigError, KafkaLabError

HEALTHY = "Worker has completed startup and is ready to handle requests."
PATH_SEGMENT_SAFE = "!$&'()*+,;=:@-._~"
"""What a URL path segment may hold unencoded besides letters and digits (RFC 3986 pchar)."""


def error(status: int, message: str) -> JSONResponse:
    """``ErrorMessage``."""
    return JSONResponse({"error_code": status, "message": message}, status_code=status)


def flag(request: Request, name: str) -> bool:
    """A query boolean as JAX-RS reads it: ``true`` in any case, anything else false."""
    return request.query_params.get(name, "false").strip().lower() == "true"


def check_media_type(request: Request) -> None:
    """``@Consumes(APPLICATION_JSON)``: a body declared as another type (curl's ``--data``
    without ``-H 'Content-Type: application/json'`` sends a form) is a 415; no declared
    type is read as JSON."""
    declared = request.headers.get("content-type")
    if declared is None:
        return
    media = declared.split(";", 1)[0].strip().lower()
    if media not in ("application/json", "application/*", "*/*"):
        raise ConnectRestError("HTTP 415 Unsupported Media Type", 415)


async def json_body(request: Request, kind: type = dict) -> Any:
    """The request's JSON, or a 400 naming what is wrong."""
    raw = await request.body()
    try:
        body = json.loads(raw or b"null", parse_constant=_not_a_json_number)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN / Infinity
        raise BadRequestError(f"Request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequestError("Request body is not valid JSON: nested too deeply") from None
    if not isinstance(body, kind):
        expected = "a JSON object" if kind is dict else "a JSON array"
        raise BadRequestError(f"Request body must be {expected}, but got "
                              f"{type(body).__name__ if body is not None else 'nothing'}.")
    return body


def _not_a_json_number(token: str) -> Any:
    """NaN and Infinity are not JSON; Jackson refuses them (its ALLOW_NON_NUMERIC_NUMBERS is off
    by default) where Python's json would read them, and a stored NaN then broke every later
    answer that included it."""
    raise ValueError(f"{token} is not a JSON number")


JAVA_HASH_SET_ORDER = ("HEAD", "DELETE", "POST", "GET", "OPTIONS", "PUT", "PATCH")
"""The order a Java ``HashSet`` of HTTP method names iterates in (its buckets follow
``String.hashCode``), which Jersey's ``Allow`` header and OPTIONS body keep. PUT and PATCH share
a bucket: they stay in the order ``ConnectorsResource`` declares them."""


def allowed_methods(methods: set[str]) -> list[str]:
    """``ModelProcessorUtil.getAllowedMethods``: a resource's methods, OPTIONS, and HEAD when it
    has GET."""
    allowed = {*methods, "OPTIONS", *(["HEAD"] if "GET" in methods else [])}
    return [method for method in JAVA_HASH_SET_ORDER if method in allowed]


def most_wanted_media_type(accept: str | None) -> str:
    """The media type an ``Accept`` header puts first: the highest ``q``, then the most specific
    (``text/plain`` before ``text/*`` before ``*/*``), then the first listed; ``*/*`` when none."""
    ranked = []
    for index, part in enumerate((accept or "").split(",")):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media and quality > 0:
            ranked.append((-quality, media.count("*"), index, media.lower()))
    return min(ranked)[3] if ranked else "*/*"


def options(allowed: list[str]) -> Callable[[Request], Any]:
    """OPTIONS on a resource, as Jersey's ``OptionsMethodProcessor`` answers it: 200 with an
    ``Allow`` header listing ``allowed`` (``GET,POST`` style). A client that takes text/plain
    first (curl's ``*/*``, or no ``Accept``) gets the same methods as a ``text/plain`` body
    (``HEAD, POST, GET, OPTIONS``); any other gets an empty body of the type it asked for.

    Jersey would answer with a WADL document instead, but Connect turns WADL off
    (``RestServer.newResourceConfig``, ``ServerProperties.WADL_FEATURE_DISABLE``)."""
    async def answer(request: Request) -> Response:
        wanted = most_wanted_media_type(request.headers.get("accept"))
        allow = {"Allow": ",".join(allowed)}
        if wanted in ("*/*", "text/*", "text/plain"):
            return Response(", ".join(allowed), headers={**allow, "Content-Type": "text/plain"})
        return Response(b"", headers={**allow, "Content-Type": wanted})
    return answer


def cluster_id(seed: int) -> str:
    """A Kafka-style 22-character cluster id, fixed by the kernel's seed."""
    digest = hashlib.sha256(f"kafka-lab-{seed}".encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode()[:22]


class StripTrailingSlash:
    """Route ``/connectors/x/`` as ``/connectors/x`` (Jersey matches both)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(scope["path"]) > 1 and scope["path"].endswith("/"):
            scope = dict(scope)
            scope["path"] = scope["path"].rstrip("/") or "/"
            scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


def create_app(herder: Herder, lock: threading.RLock | None = None) -> ASGIApp:
    """The ASGI app serving ``herder``; ``lock`` guards the kernel (one is made if not given)."""
    guard = lock or threading.RLock()
    kernel = getattr(herder, "kernel", None)
    server_info = {"version": VERSION, "commit": "unknown",
                   "kafka_cluster_id": cluster_id(getattr(kernel, "seed", 0))}

    def endpoint(fn: Callable[..., Any]) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            try:
                body = None
                if request.method in ("POST", "PUT", "PATCH") and fn.__name__ in bodies:
                    check_media_type(request)
                    body = await json_body(request, bodies[fn.__name__])
                with guard:
                    return fn(request, body)
            except ConnectRestError as exc:
                return error(exc.status, exc.message)
            except (ConfigError, ConnectError) as exc:
                return error(400 if isinstance(exc, ConfigError) else 500, str(exc))
            except KafkaLabError as exc:
                return error(500, str(exc))
        return handle

    def task_id(request: Request) -> int:
        text = request.path_params["task"]
        if not text.isdigit():
            raise NotFoundError("HTTP 404 Not Found")
        return int(text)

    def root(_r: Request, _b: Any) -> Response:
        return JSONResponse(server_info)

    def health(_r: Request, _b: Any) -> Response:
        return JSONResponse({"status": "healthy", "message": HEALTHY})

    def list_connectors(r: Request, _b: Any) -> Response:
        expand = r.query_params.getlist("expand")
        names = herder.connectors()
        if "expand" not in r.query_params:
            return JSONResponse(names)
        out: dict[str, Any] = {}
        for name in names:
            entry: dict[str, Any] = {}
            try:
                if "status" in expand:
                    entry["status"] = herder.connector_status(name)
                if "info" in expand:
                    entry["info"] = herder.connector_info(name)
            except NotFoundError:
                continue  # removed meanwhile, or no status written yet: left out, as in Kafka
            out[name] = entry
        return JSONResponse(out)

    def create_connector(_r: Request, body: dict[str, Any]) -> Response:
        name = body.get("name")
        if name is not None and not isinstance(name, str):
            raise BadRequestError("Connector name must be a JSON string")
        name = (name or "").strip()  # a missing name fails validation, as in Kafka
        if "/" in name:
            raise BadRequestError("connector name should not contain '/'")
        config = body.get("config")
        if not isinstance(config, dict):
            raise BadRequestError("Connector config must be a JSON object")
        state = body.get("initial_state")
        if state is not None:
            if not isinstance(state, str) or state.upper() not in TARGET_STATES:
                raise BadRequestError(f"Invalid initial_state {state!r}: one of "
                                      f"{', '.join(TARGET_STATES)}")
            state = state.upper()
        config = _with_name(name, config)
        _, info = herder.put_connector_config(name, config, allow_replace=False,
                                              initial_state=state)
        return JSONResponse(info, status_code=201, headers={"Location": _location(name)})

    def get_connector(r: Request, _b: Any) -> Response:
        return JSONResponse(herder.connector_info(r.path_params["name"]))

    def get_config(r: Request, _b: Any) -> Response:
        return JSONResponse(herder.connector_config(r.path_params["name"]))

    def put_config(r: Request, body: dict[str, Any]) -> Response:
        name = r.path_params["name"]
        created, info = herder.put_connector_config(name, _with_name(name, body),
                                                    allow_replace=True)
        if created:
            return JSONResponse(info, status_code=201, headers={"Location": _location(name)})
        return JSONResponse(info)

    def patch_config(r: Request, body: dict[str, Any]) -> Response:
        name = r.path_params["name"]
        if "name" in body and body["name"] != name:
            raise BadRequestError(f"Connector name configuration ({body['name']}) doesn't match "
                                  f"connector name in the URL ({name})")
        return JSONResponse(herder.patch_connector_config(name, body))

    def delete_connector(r: Request, _b: Any) -> Response:
        herder.delete_connector_config(r.path_params["name"])
        return Response(status_code=204)

    def status(r: Request, _b: Any) -> Response:
        return JSONResponse(herder.connector_status(r.path_params["name"]))

    def tasks(r: Request, _b: Any) -> Response:
        return JSONResponse(herder.task_configs(r.path_params["name"]))

    def task_status(r: Request, _b: Any) -> Response:
        return JSONResponse(herder.task_status(r.path_params["name"], task_id(r)))

    def restart_task(r: Request, _b: Any) -> Response:
        herder.restart_task(r.path_params["name"], task_id(r))
        return Response(status_code=204)

    def restart(r: Request, _b: Any) -> Response:
        name = r.path_params["name"]
        include_tasks, only_failed = flag(r, "includeTasks"), flag(r, "onlyFailed")
        if not include_tasks and not only_failed:
            herder.restart_connector(name)  # the legacy behaviour: the connector alone
            return Response(status_code=204)
        return JSONResponse(herder.restart_connector_and_tasks(name, only_failed, include_tasks),
                            status_code=202)

    def pause(r: Request, _b: Any) -> Response:
        herder.pause_connector(r.path_params["name"])
        return Response(status_code=202)

    def resume(r: Request, _b: Any) -> Response:
        herder.resume_connector(r.path_params["name"])
        return Response(status_code=202)

    def stop(r: Request, _b: Any) -> Response:
        herder.stop_connector(r.path_params["name"])
        return Response(status_code=204)

    def get_offsets(r: Request, _b: Any) -> Response:
        return JSONResponse(herder.connector_offsets(r.path_params["name"]))

    def patch_offsets(r: Request, body: dict[str, Any]) -> Response:
        offsets = body.get("offsets")
        if offsets is not None and not isinstance(offsets, list):
            raise BadRequestError("\"offsets\" must be a JSON array")
        message = herder.alter_connector_offsets(r.path_params["name"], offsets or [])
        return JSONResponse({"message": message})

    def delete_offsets(r: Request, _b: Any) -> Response:
        return JSONResponse({"message": herder.reset_connector_offsets(r.path_params["name"])})

    def topics(r: Request, _b: Any) -> Response:
        return JSONResponse(herder.connector_active_topics(r.path_params["name"]))

    def reset_topics(r: Request, _b: Any) -> Response:
        herder.reset_connector_active_topics(r.path_params["name"])
        return Response(status_code=202)

    def plugins(r: Request, _b: Any) -> Response:
        only = r.query_params.get("connectorsOnly", "true").strip().lower() != "false"
        return JSONResponse(herder.connector_plugins(only))

    def plugin_config(r: Request, _b: Any) -> Response:
        return JSONResponse(herder.connector_plugin_config(r.path_params["plugin"]))

    def validate(r: Request, body: dict[str, Any]) -> Response:
        plugin = r.path_params["plugin"]
        included = body.get("connector.class")
        if included is not None and not _normalised(str(included)).endswith(
                _normalised(plugin)):
            raise BadRequestError(f"Included connector type {included} does not match request "
                                  f"type {plugin}")
        return JSONResponse(herder.validate_connector_config({**body,
                                                              "connector.class": plugin}))

    bodies: dict[str, type] = {"create_connector": dict, "put_config": dict, "patch_config": dict,
                             "patch_offsets": dict, "validate": dict}
    c = "/connectors/{name}"
    routes = [
        Route("/", endpoint(root), methods=["GET"]),
        Route("/health", endpoint(health), methods=["GET"]),
        Route("/connectors", endpoint(list_connectors), methods=["GET"]),
        Route("/connectors", endpoint(create_connector), methods=["POST"]),
        Route(c, endpoint(get_connector), methods=["GET"]),
        Route(c, endpoint(delete_connector), methods=["DELETE"]),
        Route(c + "/config", endpoint(get_config), methods=["GET"]),
        Route(c + "/config", endpoint(put_config), methods=["PUT"]),
        Route(c + "/config", endpoint(patch_config), methods=["PATCH"]),
        Route(c + "/status", endpoint(status), methods=["GET"]),
        Route(c + "/tasks", endpoint(tasks), methods=["GET"]),
        Route(c + "/tasks/{task}/status", endpoint(task_status), methods=["GET"]),
        Route(c + "/tasks/{task}/restart", endpoint(restart_task), methods=["POST"]),
        Route(c + "/restart", endpoint(restart), methods=["POST"]),
        Route(c + "/pause", endpoint(pause), methods=["PUT"]),
        Route(c + "/resume", endpoint(resume), methods=["PUT"]),
        Route(c + "/stop", endpoint(stop), methods=["PUT"]),
        Route(c + "/offsets", endpoint(get_offsets), methods=["GET"]),
        Route(c + "/offsets", endpoint(patch_offsets), methods=["PATCH"]),
        Route(c + "/offsets", endpoint(delete_offsets), methods=["DELETE"]),
        Route(c + "/topics", endpoint(topics), methods=["GET"]),
        Route(c + "/topics/reset", endpoint(reset_topics), methods=["PUT"]),
        Route("/connector-plugins", endpoint(plugins), methods=["GET"]),
        Route("/connector-plugins/{plugin}/config", endpoint(plugin_config), methods=["GET"]),
        Route("/connector-plugins/{plugin}/config/validate", endpoint(validate),
              methods=["PUT"]),
    ]
    methods_of: dict[str, set[str]] = {}
    for route in routes:
        methods_of.setdefault(route.path, set()).update(route.methods - {"HEAD"})
    routes += [Route(path, options(allowed_methods(methods)), methods=["OPTIONS"])
               for path, methods in methods_of.items()]

    async def http_error(_r: Request, exc: Exception) -> Response:
        code = getattr(exc, "status_code", 500)
        return error(code, f"HTTP {code} {HTTPStatus(code).phrase}")

    async def server_error(_r: Request, exc: Exception) -> Response:
        return error(500, f"{type(exc).__name__}: {exc}")

    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error,
                                                        Exception: server_error})
    app.state.herder = herder
    app.state.lock = guard
    return StripTrailingSlash(app)


def _with_name(name: str, config: dict[str, Any]) -> dict[str, Any]:
    """``checkAndPutConnectorConfigName``: a name in the config must match the URL's."""
    if "name" in config and config["name"] != name:
        raise BadRequestError(f"Connector name configuration ({config['name']}) doesn't match "
                              f"connector name in the URL ({name})")
    return {**config, "name": name}


def _location(name: str) -> str:
    """The new connector's URL path, percent-encoded as JAX-RS's ``UriBuilder.path`` makes it:
    a header holds only ASCII, and a name such as "名前" failed the answer after the connector
    was created."""
    return f"/connectors/{quote(name, safe=PATH_SEGMENT_SAFE)}"


def _normalised(name: str) -> str:
    return name.removesuffix("Connector")
