"""The routing tree: which team owns a case and which receivers hear about it.

Alertmanager's semantics: siblings are tried in order and the first whose matchers all hold
wins, unless it says `continue: true`, in which case the following siblings are tried as well.
A matching route with children descends; if no child matches, the route itself is the match.
Feedback no top-level route matches goes to the triage route: nothing is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cxloop_closed_loop.config import Route, RoutingConfig


@dataclass(frozen=True)
class RouteMatch:
    """One matched leaf: its path of route names, its team and its own extra receivers."""

    path: tuple[str, ...]
    team: str
    receivers: tuple[str, ...]


@dataclass(frozen=True)
class RoutingDecision:
    """Where a case goes: the first match owns it; every match's receivers are notified."""

    matches: tuple[RouteMatch, ...]
    triaged: bool

    @property
    def team(self) -> str:
        """The owning team (the first match's)."""
        return self.matches[0].team

    @property
    def path(self) -> str:
        """The owning route's path, `a/b/c`."""
        return "/".join(self.matches[0].path)

    def receivers(self, config: RoutingConfig) -> list[str]:
        """Receivers of a new case: each matched team's, each route's own, the global ones."""
        names: list[str] = []
        for match in self.matches:
            names += config.team(match.team).receivers
            names += match.receivers
        names += config.global_receivers
        return list(dict.fromkeys(names))


def _route_name(route: Route, index: int) -> str:
    return route.name or f"route-{index}"


def _walk(
    routes: list[Route],
    labels: Mapping[str, str],
    *,
    team: str,
    receivers: tuple[str, ...],
    path: tuple[str, ...],
) -> list[RouteMatch]:
    found: list[RouteMatch] = []
    for index, route in enumerate(routes):
        if not all(m.matches(labels) for m in route.parsed_matchers()):
            continue
        here = (*path, _route_name(route, index))
        route_team = route.team or team
        route_receivers = (*receivers, *route.receivers)
        below = _walk(route.routes, labels, team=route_team, receivers=route_receivers, path=here)
        found += below or [RouteMatch(here, route_team, route_receivers)]
        if not route.continue_:
            break
    return found


def route(config: RoutingConfig, labels: Mapping[str, str]) -> RoutingDecision:
    """Route one case's labels through the tree."""
    found = _walk(config.routes, labels, team=config.triage.team, receivers=(), path=())
    if found:
        return RoutingDecision(tuple(found), triaged=False)
    triage = RouteMatch(("triage",), config.triage.team, tuple(config.triage.receivers))
    return RoutingDecision((triage,), triaged=True)
