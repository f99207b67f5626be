"""Pick routes over a single-block layout (the walking model of docs/interfaces.md; docs/picking.md).

Walking happens along aisles and along the front (y = 0) and back (y = depth) cross aisles;
levels add no distance. Two routers:

- **S-shape** (what most warehouse systems use): every aisle holding a pick is walked end to
  end, alternating direction; an odd last aisle is entered from the front and left the same way.
- **Ratliff & Rosenthal (1983)**: the exact optimum for one rectangular block with a front and a
  back cross aisle, by dynamic programming over the aisles. A tour is a connected Eulerian
  multigraph over the aisle graph; going left to right, a partial tour is described by the degree
  parity of the aisle's back and front nodes (none / odd / even) and how many components touch
  them (0, 1, 2), plus "closed" (a finished tour to the left). Each aisle's own edges are one of
  six configurations (none, one traversal, two, return from the back, return from the front, both
  ends with the largest gap left out) and each cross-aisle segment carries 0, 1 or 2 copies. The
  transitions are computed with a 4-node union-find rather than tabulated by hand, so the 7
  classes of the paper appear as the reachable states. The chosen edges become a closed walk by
  Hierholzer's algorithm from the depot; the stops come out in first-visit order.

:func:`route` runs both and keeps the shorter (the DP is never longer; S-shape is kept as a check
and for an equal-length tie the simpler-to-walk S-shape wins). :func:`held_karp` is an exact
solver over the metric closure for small lists, used by the tests and the benchmark to prove the
DP optimal.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from functools import cache

from scanedge.edge.domain.layout import Layout, Location

Point = tuple[int, float]  # (aisle, y)
EPS = 1e-6


@dataclass(frozen=True)
class Route:
    stops: tuple[str, ...]  # location codes in visiting order
    length_m: float
    method: str  # "ratliff_rosenthal" | "s_shape" | "empty"

    def as_json(self) -> dict[str, object]:
        return {"stops": list(self.stops), "length_m": round(self.length_m, 3),
                "method": self.method}


def distance(layout: Layout, p: Point, q: Point) -> float:
    """Shortest walk between two points of the block."""
    (a1, y1), (a2, y2) = p, q
    if a1 == a2:
        return abs(y1 - y2)
    depth = layout.depth_m
    return abs(layout.x(a1) - layout.x(a2)) + min(y1 + y2, 2 * depth - y1 - y2)


def depot(layout: Layout) -> Point:
    return (layout.depot_aisle, 0.0)


def point(layout: Layout, loc: Location) -> Point:
    return (loc.aisle, layout.y(loc.bin))


def tour_length(layout: Layout, points: list[Point]) -> float:
    """From the depot through ``points`` in order and back."""
    path = [depot(layout), *points, depot(layout)]
    return sum(distance(layout, path[i], path[i + 1]) for i in range(len(path) - 1))


def _group(layout: Layout, locations: list[Location]) -> dict[Point, list[Location]]:
    groups: dict[Point, list[Location]] = defaultdict(list)
    for loc in locations:
        groups[point(layout, loc)].append(loc)
    for locs in groups.values():
        locs.sort(key=lambda loc: (loc.level, loc.code))
    return groups


def _codes(groups: dict[Point, list[Location]], order: list[Point]) -> tuple[str, ...]:
    return tuple(loc.code for p in order for loc in groups[p])


# -- S-shape ------------------------------------------------------------------------------------
def s_shape_order(points: list[Point]) -> list[Point]:
    by_aisle: dict[int, list[float]] = defaultdict(list)
    for a, y in set(points):
        by_aisle[a].append(y)
    order: list[Point] = []
    for k, aisle in enumerate(sorted(by_aisle)):
        ys = sorted(by_aisle[aisle], reverse=k % 2 == 1)
        order.extend((aisle, y) for y in ys)
    return order


# -- Ratliff & Rosenthal -----------------------------------------------------------------------
# An aisle configuration: (name, added degree of the back node, of the front node, joins them).
_NONE, _FULL, _DOUBLE, _BACK, _FRONT, _GAP = "none", "full", "double", "back", "front", "gap"
_SHAPE = {_NONE: (0, 0, False), _FULL: (1, 1, True), _DOUBLE: (2, 2, True),
          _BACK: (2, 0, False), _FRONT: (0, 2, False), _GAP: (2, 2, False)}
State = tuple[int, int, int, bool]  # (back parity 0/1 odd/2 even, front parity, components, closed)
START: State = (0, 0, 0, False)


def _parity(degree: int) -> int:
    return 0 if degree == 0 else (1 if degree % 2 else 2)


@cache
def _step(state: State, t: int, u: int, shape: str) -> State | None:
    """Close the back/front nodes of aisle j with t/u cross copies to aisle j+1, and give
    aisle j+1 the configuration ``shape``; None if that cannot be part of a tour."""
    pa, pb, comp, closed = state
    da, db, joins = _SHAPE[shape]
    if closed:
        return state if t == u == 0 and shape == _NONE else None
    if (pa == 1) != (t == 1) or (pb == 1) != (u == 1):
        return None  # a node left with an odd degree
    parent = [0, 1, 2, 3]  # back, front, next back, next front

    def find(n: int) -> int:
        while parent[n] != n:
            n = parent[n]
        return n

    def union(m: int, n: int) -> None:
        parent[find(m)] = find(n)

    if comp == 1 and pa and pb:
        union(0, 1)
    if t:
        union(0, 2)
    if u:
        union(1, 3)
    if joins:
        union(2, 3)
    na, nb = _parity(t + da), _parity(u + db)
    new_active = [n for n, p in ((2, na), (3, nb)) if p]
    roots = {find(n) for n in new_active}
    old_active = [n for n, p in ((0, pa), (1, pb)) if p]
    orphaned = any(find(n) not in roots for n in old_active)
    if orphaned:
        if new_active or comp != 1:
            return None
        return (0, 0, 0, True)
    return (na, nb, len(roots), False)


def _shapes(ys: list[float], depth: float) -> list[tuple[str, float, int]]:
    """(shape, cost, gap index) for an aisle whose picks are at ``ys`` (sorted)."""
    if not ys:
        return [(_NONE, 0.0, -1), (_FULL, depth, -1), (_DOUBLE, 2 * depth, -1)]
    out = [(_FULL, depth, -1), (_DOUBLE, 2 * depth, -1), (_BACK, 2 * (depth - ys[0]), -1),
           (_FRONT, 2 * ys[-1], -1)]
    if len(ys) > 1:
        i = max(range(len(ys) - 1), key=lambda k: ys[k + 1] - ys[k])
        out.append((_GAP, 2 * (depth - (ys[i + 1] - ys[i])), i))
    return out


def rr_order(layout: Layout, points: list[Point]) -> tuple[list[Point], float]:
    """The optimal visiting order and its length (Ratliff & Rosenthal)."""
    if not points:
        return [], 0.0
    by_aisle: dict[int, list[float]] = defaultdict(list)
    for a, y in set(points):
        by_aisle[a].append(y)
    for ys in by_aisle.values():
        ys.sort()
    first = min(min(by_aisle), layout.depot_aisle)
    last = max(max(by_aisle), layout.depot_aisle)
    depth, pitch, home = layout.depth_m, layout.aisle_pitch_m, layout.depot_aisle
    cross = [(t, u) for t in range(3) for u in range(3)]
    # table[k]: state -> (cost, previous state, t, u, shape, gap) after aisle first + k
    table: list[dict[State, tuple]] = []
    frontier: dict[State, tuple] = {START: (0.0, None, 0, 0, _NONE, -1)}
    for aisle in range(first, last + 1):
        options = _shapes(by_aisle.get(aisle, []), depth)
        nxt: dict[State, tuple] = {}
        for state, (cost, *_rest) in frontier.items():
            pairs = [(0, 0)] if aisle == first else cross
            for t, u in pairs:
                if aisle - 1 == home and aisle != first and state[1] == 0 and u == 0:
                    continue  # the depot (front of its aisle) must be on the tour
                for shape, shape_cost, gap in options:
                    new = _step(state, t, u, shape)
                    if new is None:
                        continue
                    total = cost + (t + u) * pitch + shape_cost
                    if new not in nxt or total < nxt[new][0] - EPS:
                        nxt[new] = (total, state, t, u, shape, gap)
        table.append(nxt)
        frontier = nxt
    best: tuple[float, State] | None = None
    for state, (cost, *_rest) in frontier.items():
        pa, pb, comp, closed = state
        ok = closed or (comp == 1 and pa != 1 and pb != 1 and (pa or pb))
        if ok and last == home and (closed or pb == 0):
            ok = False  # the depot is the front of the last aisle: it must be on the tour
        if ok and (best is None or cost < best[0] - EPS):
            best = (cost, state)
    assert best is not None, "no tour: the DP has a hole"
    # walk back through the table: each aisle's shape and the cross copies to its left
    choices: list[tuple[int, int, str, int]] = []
    state = best[1]
    for k in range(len(table) - 1, -1, -1):
        _cost, prev, t, u, shape, gap = table[k][state]
        choices.append((t, u, shape, gap))
        state = prev
    choices.reverse()
    order = _euler_order(layout, by_aisle, first, choices)
    return order, best[0]


def _euler_order(layout: Layout, by_aisle: dict[int, list[float]], first: int,
                 choices: list[tuple[int, int, str, int]]) -> list[Point]:
    adj: dict[tuple, list[tuple[tuple, int]]] = defaultdict(list)
    edges = 0

    def add(m: tuple, n: tuple, copies: int = 1) -> None:
        nonlocal edges
        for _ in range(copies):
            adj[m].append((n, edges))
            adj[n].append((m, edges))
            edges += 1

    def chain(nodes: list[tuple], copies: int) -> None:
        for m, n in itertools.pairwise(nodes):
            add(m, n, copies)

    for k, (t, u, shape, gap) in enumerate(choices):
        aisle = first + k
        if k:
            add(("A", aisle - 1), ("A", aisle), t)
            add(("B", aisle - 1), ("B", aisle), u)
        picks = [("P", aisle, y) for y in by_aisle.get(aisle, [])]
        back, front = ("A", aisle), ("B", aisle)
        if shape in (_FULL, _DOUBLE):
            chain([front, *picks, back], 1 if shape == _FULL else 2)
        elif shape == _BACK:
            chain([back, *reversed(picks)], 2)
        elif shape == _FRONT:
            chain([front, *picks], 2)
        elif shape == _GAP:
            chain([front, *picks[:gap + 1]], 2)
            chain([back, *reversed(picks[gap + 1:])], 2)
    start = ("B", layout.depot_aisle)
    used: set[int] = set()
    stack: list[tuple] = [start]
    walk: list[tuple] = []
    while stack:  # Hierholzer
        node = stack[-1]
        neighbours = adj[node]
        while neighbours and neighbours[-1][1] in used:
            neighbours.pop()
        if neighbours:
            nxt, edge = neighbours.pop()
            used.add(edge)
            stack.append(nxt)
        else:
            walk.append(stack.pop())
    seen: set[Point] = set()
    order: list[Point] = []
    for node in reversed(walk):
        if node[0] == "P":
            p = (node[1], node[2])
            if p not in seen:
                seen.add(p)
                order.append(p)
    return order


# -- exact check for small lists ---------------------------------------------------------------
def held_karp(layout: Layout, points: list[Point]) -> float:
    """The optimal tour length over the metric closure (exact, O(2^n n^2): n <= 13 or so)."""
    pts = sorted(set(points))
    n = len(pts)
    if n == 0:
        return 0.0
    home = depot(layout)
    d0 = [distance(layout, home, p) for p in pts]
    d = [[distance(layout, p, q) for q in pts] for p in pts]
    best: dict[tuple[int, int], float] = {(1 << i, i): d0[i] for i in range(n)}
    for size in range(2, n + 1):
        for subset in itertools.combinations(range(n), size):
            mask = sum(1 << i for i in subset)
            for j in subset:
                prev = mask & ~(1 << j)
                best[(mask, j)] = min(best[(prev, i)] + d[i][j] for i in subset if i != j)
    full = (1 << n) - 1
    return min(best[(full, j)] + d0[j] for j in range(n))


# -- the router ---------------------------------------------------------------------------------
def route(layout: Layout, locations: list[Location], method: str = "best") -> Route:
    """The route from the depot through every location and back. ``method``: best (the shorter
    of S-shape and Ratliff-Rosenthal), s_shape or ratliff_rosenthal."""
    if method not in ("best", "s_shape", "ratliff_rosenthal"):
        raise ValueError(f"method {method!r}")
    if not locations:
        return Route((), 0.0, "empty")
    groups = _group(layout, locations)
    points = list(groups)
    candidates: list[Route] = []
    if method in ("best", "s_shape"):
        order = s_shape_order(points)
        candidates.append(Route(_codes(groups, order), tour_length(layout, order), "s_shape"))
    if method in ("best", "ratliff_rosenthal"):
        order, _ = rr_order(layout, points)
        candidates.append(Route(_codes(groups, order), tour_length(layout, order),
                                "ratliff_rosenthal"))
    return min(candidates, key=lambda r: (round(r.length_m, 6), r.method != "s_shape"))
