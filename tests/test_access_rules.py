"""Every path that yields data declares its access rule (``flows.access``): each web route, REST route and CLI
sub-command. A route or command added without one fails here, so a new path cannot skip the policy."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.routing import BaseRoute, Mount

from flows.access import (
    Principal,
    Rule,
    access_rule,
    local_operator,
    rule_of,
    visible_items,
    visible_reasons,
    visible_status,
)
from interfaces.cli import build_parser
from interfaces.web import create_app
from interfaces.web.config import WebSettings
from pipeline.quality import duplicate_reasons
from schemas.reasons import from_legacy_text
from schemas.settings import Settings

STATIC_MOUNTS = {"static", "apidocs"}  # the app's own CSS/JS and the Swagger UI assets: no document data


def _routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, BaseRoute]]:
    """Every route of the app with its full path, looking into included routers (FastAPI keeps them nested)."""
    for route in routes:
        router = getattr(route, "original_router", None)
        if router is not None:
            yield from _routes(list(router.routes), prefix)
        else:
            yield prefix + str(getattr(route, "path", "")), route


def undeclared_routes(app: FastAPI) -> list[str]:
    """Routes whose handler declares no access rule (mounts of static assets excepted)."""
    missing = []
    for path, route in _routes(list(app.routes)):
        if isinstance(route, Mount):
            if route.name not in STATIC_MOUNTS:
                missing.append(f"mount {path}")
            continue
        if rule_of(getattr(route, "endpoint", None)) is None:
            methods = ",".join(sorted(getattr(route, "methods", None) or []))
            missing.append(f"{methods} {path}")
    return missing


def declared_routes(app: FastAPI) -> dict[str, Rule | None]:
    return {path: rule_of(getattr(route, "endpoint", None)) for path, route in _routes(list(app.routes))
            if not isinstance(route, Mount)}


def _leaf_parsers(parser: argparse.ArgumentParser, path: str = "") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    seen: set[int] = set()
    for action in subs:
        for name, child in action.choices.items():
            if id(child) in seen:  # aliases (digitize)
                continue
            seen.add(id(child))
            yield from _leaf_parsers(child, f"{path} {name}".strip())


def undeclared_commands(parser: argparse.ArgumentParser) -> list[str]:
    return [name for name, leaf in _leaf_parsers(parser) if rule_of(leaf.get_default("func")) is None]


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return create_app(Settings(archive=tmp_path / "a"), WebSettings())


def test_every_web_and_api_route_declares_an_access_rule(app: FastAPI) -> None:
    declared = declared_routes(app)
    assert {"/search", "/documents/{doc_id}", "/api/search", "/review/{doc_id}", "/batches/{batch_id}",
            "/admin/audit"} <= set(declared)
    assert undeclared_routes(app) == []


def test_a_route_added_without_a_rule_fails(app: FastAPI) -> None:
    @app.get("/api/leak")
    def leak() -> dict[str, str]:
        return {}

    @app.get("/api/declared")
    @access_rule(Rule.SEARCH)
    def declared() -> dict[str, str]:
        return {}

    assert [r for r in undeclared_routes(app) if "/api/" in r] == ["GET /api/leak"]


def test_every_cli_command_declares_an_access_rule() -> None:
    parser = build_parser()
    names = [name for name, _ in _leaf_parsers(parser)]
    assert {"show", "search", "export", "register", "batch show", "audit list"} <= set(names)
    assert undeclared_commands(parser) == []


def test_a_command_added_without_a_rule_fails() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub.add_parser("leak").set_defaults(func=lambda args: 0)
    assert undeclared_commands(parser) == ["leak"]


def test_every_command_group_registers_handlers_with_rules() -> None:
    """Each module of ``interfaces.cli`` that registers commands is part of the parser, and each of its ``cmd_*``
    handlers (those only called by another handler too) declares its rule on the ``def``."""
    import importlib
    import pkgutil

    import interfaces.cli as cli

    groups = {m.__name__ for m in cli.COMMAND_GROUPS}
    handlers = []
    for info in pkgutil.iter_modules(cli.__path__):
        module = importlib.import_module(f"interfaces.cli.{info.name}")
        assert hasattr(module, "register") == (module.__name__ in groups), module.__name__
        handlers += [(f"{info.name}.{name}", obj) for name, obj in vars(module).items()
                     if name.startswith("cmd_") and getattr(obj, "__module__", None) == module.__name__]
    assert len(handlers) >= 20
    assert [name for name, handler in handlers if rule_of(handler) is None] == []


def test_policy_decisions_fail_closed() -> None:
    reader = Principal(name="a", role="archivist", clearance=1)
    assert reader.may_see(None) and reader.may_see("Mật")
    assert not reader.may_see("Tối mật") and not reader.may_see("Tuyệt mật")
    assert not reader.may_see("MẬT?")  # an unknown mark is the top level
    assert local_operator("root").may_see("Tuyệt mật")
    levels = {"open1": 0, "mat1": 1, "toimat1": 2}.get
    reasons = [*duplicate_reasons([("open1", "a.png"), ("toimat1", "b.png"), ("gone", "c.png")]),
               from_legacy_text("trang 1: đọc kém")]
    assert visible_reasons(reader, reasons, levels) == [reasons[0], reasons[3]]
    rows = [{"classification": None}, {"classification": "Mật"}, {"classification": "Tối mật"}, {"classification": 7}]
    assert visible_items(reader, rows, lambda r: len(str(r["classification"] or "")) and
                         {"Mật": 1, "Tối mật": 2}.get(str(r["classification"]), 3)) == rows[:2]
    hidden_only = duplicate_reasons([("toimat1", "b.png")])
    assert visible_status("needs_review", hidden_only, visible_reasons(reader, hidden_only, levels)) == "done"
    assert visible_status("needs_review", reasons, visible_reasons(reader, reasons, levels)) == "needs_review"
    assert visible_status("needs_review", [], []) == "needs_review"  # flagged by hand, no reason: stays
