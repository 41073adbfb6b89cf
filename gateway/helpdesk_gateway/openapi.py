"""The OpenAPI 3.1 document, built from the declared operations and the shared contracts."""
import re

from helpdesk_common.contracts import MAX_RECORD_ID, View

from .api import OPERATIONS, SCOPES
from .ratelimits import UNLIMITED

ERROR_TEXT = {
    400: "Malformed request (e.g. invalid JSON).",
    401: "Missing or invalid API token.",
    403: "The token's role may not do this, or not on this object (e.g. another team's queue).",
    404: "No such ticket, or not visible to you.",
    409: "Conflicts with the ticket's state (e.g. a transition the workflow forbids).",
    413: "The body is larger than the configured limit.",
    200: "A repeat of an earlier request: the answer of the first.",
    415: "The body is not JSON.",
    422: "The body or query is not valid; `details` lists each problem.",
    503: "A service or the broker is unreachable; retry.",
    429: "Too many requests (`rate_limited`, or `too_many_streams` for live streams); retry after `Retry-After` seconds.",
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before the next try.", "schema": {"type": "integer"}}}


class ErrorBody(View):
    code: str
    message: str
    details: list[dict] = []


class Error(View):
    error: ErrorBody


def _path(rule):
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _path_schema(converter):
    """A path parameter's schema: ``<int:...>`` takes record ids (api.operation bounds them to 64 bits)."""
    if converter == "int":
        return {"type": "integer", "minimum": 0, "maximum": MAX_RECORD_ID}
    return {"type": "string"}


def _schema(model, schemas):
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(schema):
    return {"application/json": {"schema": schema}}


def document(version="1"):
    """The whole OpenAPI document as a dict."""
    schemas, paths = {}, {}
    error_ref = _schema(Error, schemas)
    for op in OPERATIONS:
        item = {"summary": op.summary, "operationId": op.endpoint.replace(".", "_"), "tags": [op.tag],
                "responses": {}}
        if op.description:
            item["description"] = op.description
        if not op.public:
            item["description"] = (item.get("description", "") + f"\n\nRoles: {', '.join(op.roles)}.").strip()
        if op.scope != "none":
            item["description"] = (item.get("description", "") + f"\n\nScope: {SCOPES[op.scope]}").strip()
        # Who may call it and on what, as declared with the route (api.operation): the matrix tests hold
        # every route to it, and integrators can read it.
        item["x-access"] = {"credential": op.credential, "roles": list(op.roles), "scope": op.scope,
                            "token_scope": op.token_scope,
                            "matrix": op.matrix()}
        if op.credential == "none":
            item["security"] = [{}, {"bearer": []}]  # visitors need no token; a token widens the view
        elif op.credential == "signature":
            item["security"] = [{}]  # the sender's signature headers, not a token
        parameters = [{"name": name, "in": "path", "required": True, "schema": _path_schema(converter)}
                      for converter, name in re.findall(r"<(?:([^:<>]+):)?([^<>]+)>", op.rule)]
        if op.query is not None:
            for name, field in op.query.model_fields.items():
                name = field.alias or name  # a parameter named by a Python keyword (``from``) has an alias
                schema = op.query.model_json_schema()["properties"][name]
                parameters.append({"name": name, "in": "query", "required": field.is_required(),
                                   "schema": schema, "description": field.description or ""})
        for header, text in op.headers.items():
            parameters.append({"name": header, "in": "header", "required": False,
                               "schema": {"type": "string"}, "description": text})
        if parameters:
            item["parameters"] = parameters
        if op.body is not None:
            item["requestBody"] = {"required": True, "content": _json(_schema(op.body, schemas))}
        if op.answer is not None:
            ref = _schema(op.answer, schemas)
            body = {"type": "array", "items": ref} if op.answer_is_list else ref
            item["responses"][str(op.answer_status)] = {"description": "Success", "content": _json(body)}
        elif op.media_type != "application/json":
            item["responses"][str(op.answer_status)] = {"description": "Success",
                                                        "content": {op.media_type: {"schema": {"type": "string"}}}}
        else:
            item["responses"][str(op.answer_status)] = {"description": "Success",
                                                        "content": _json({"type": "object"})}
        for media_type in op.also_media_types:
            item["responses"][str(op.answer_status)]["content"][media_type] = {"schema": {"type": "string"}}
        limited = op.endpoint not in UNLIMITED  # 429: ratelimits.py
        codes = set(op.errors) | ({401, 403} if not op.public else set()) | {503} | ({429} if limited else set())
        for code in sorted(codes):
            item["responses"][str(code)] = {"description": ERROR_TEXT.get(code, "Error"), "content": _json(error_ref)}
        if limited:
            item["responses"]["429"]["headers"] = RETRY_AFTER
        if parameters:
            # The HTTP server (gunicorn's limit_request_line) refuses a request line longer than it reads,
            # before the app sees it: not JSON, but an answer a client can get.
            item["responses"]["414"] = {"description": "The request line (path and query) is too long."}
        for code, model in op.other_answers.items():
            item["responses"][str(code)] = {"description": ERROR_TEXT.get(code, "Answer"),
                                            "content": _json(_schema(model, schemas))}
        paths.setdefault(_path(op.rule), {})[op.method.lower()] = item
    return {
        "openapi": "3.1.0",
        "info": {"title": "Helpdesk API", "version": version,
                 "description": "REST API of the helpdesk platform. Every error is JSON: "
                                "`{\"error\": {\"code\", \"message\", \"details\"}}` with a stable code."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "An API token (helpdesk token create)."}}},
    }

