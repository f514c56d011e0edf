"""The boot of a server as an SVG sequence diagram: one lane per service, one arrow per recorded hop (FLOW.md's
step, kind, duration), a time axis; the failing hop of a server in ERROR drawn in red with its fault."""

from __future__ import annotations

from html import escape
from typing import Any

LANES: list[tuple[str, str]] = [
    ("client", "client"), ("identity", "identity"), ("compute-api", "compute API"), ("conductor", "conductor"),
    ("scheduler", "scheduler"), ("compute", "compute agent"), ("image", "image"), ("network", "network"),
    ("volume", "volume"), ("hypervisor", "hypervisor"),
]
LANE_W, TOP, ROW_H, LEFT = 118, 70, 26, 70
KIND_COLOUR = {"REST": "#1f6feb", "CALL": "#8250df", "CAST": "#bf8700", "DB": "#57606a", "WORK": "#1a7f37"}
FAILED = "#cf222e"


def lane_of(component: str) -> str:
    """A span's component as its lane: `compute@host1` is the compute agent; the database is drawn in its caller's
    lane (a DB hop is a box, not an arrow)."""
    name = component.split("@", 1)[0]
    return "compute" if name.startswith("compute.") else name  # a host's queue (compute.<host>): its agent


def _failed(hop: dict[str, Any]) -> bool:
    outcome = str(hop.get("outcome") or "")
    return outcome not in ("", "ok") and not (outcome.isdigit() and int(outcome) < 400)


def failing_hop(hops: list[dict[str, Any]]) -> int | None:
    """The index of the hop where the boot broke: the last failed one (the first failure the rest propagated)."""
    failed = [i for i, hop in enumerate(hops) if _failed(hop)]
    return failed[-1] if failed else None


def render_svg(hops: list[dict[str, Any]], total_ms: float, fault: str | None = None) -> str:
    lanes = list(LANES)
    for hop in hops:
        for name in (lane_of(hop["from"]), lane_of(hop["to"])):
            if name != "DB" and all(name != key for key, _ in lanes):
                lanes.append((name, name))
    x = {key: LEFT + LANE_W // 2 + i * LANE_W for i, (key, _) in enumerate(lanes)}
    broken = failing_hop(hops) if fault is not None else None
    height = TOP + ROW_H * (len(hops) + 1) + (40 if fault else 10)
    width = LEFT + LANE_W * len(lanes) + 10
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="flow" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker></defs>',
           f'<text x="4" y="{TOP - 30}" font-weight="bold">ms</text>']
    for key, label in lanes:
        out.append(f'<g class="lane" data-lane="{escape(key)}"><rect x="{x[key] - 52}" y="20" width="104" '
                   f'height="24" rx="4" fill="#f6f8fa" stroke="#d0d7de"/><text x="{x[key]}" y="36" '
                   f'text-anchor="middle">{escape(label)}</text><line x1="{x[key]}" y1="44" x2="{x[key]}" '
                   f'y2="{height - 8}" stroke="#d0d7de" stroke-dasharray="4 3"/></g>')
    for i, hop in enumerate(hops):
        y = TOP + ROW_H * (i + 1)
        red = i == broken
        colour = FAILED if red else KIND_COLOUR.get(hop["kind"], "#57606a")
        a, b = x.get(lane_of(hop["from"])), x.get(lane_of(hop["to"]))
        label = f'{hop.get("step") or "·"} {hop["kind"]} {hop["duration_ms"]:.1f} ms'
        title = escape(f'{hop["from"]} -> {hop["to"]}: {hop["operation"]} ({hop.get("outcome") or ""})')
        out.append(f'<g class="hop{" failed" if red else ""}" data-step="{escape(str(hop.get("step") or ""))}" '
                   f'data-kind="{escape(hop["kind"])}"><title>{title}</title>'
                   f'<text x="4" y="{y + 4}" fill="#57606a">{hop["offset_ms"]:.0f}</text>')
        if a is None or b is None or a == b:  # DB and WORK hops: a box on the caller's lane
            at = a if a is not None else b or LEFT
            out.append(f'<rect x="{at - 6}" y="{y - 8}" width="12" height="14" fill="{colour}"/>'
                       f'<text x="{at + 10}" y="{y + 4}" fill="{colour}">{escape(label)} · '
                       f'{escape(hop["operation"][:40])}</text>')
        else:
            mid = (a + b) / 2
            out.append(f'<line x1="{a}" y1="{y}" x2="{b}" y2="{y}" stroke="{colour}" '
                       f'stroke-width="{3 if red else 1.6}" marker-end="url(#arrow)"/>'
                       f'<text x="{mid}" y="{y - 4}" text-anchor="middle" '
                       f'fill="{colour}">{escape(label)}</text>')
        out.append("</g>")
    if fault:
        out.append(f'<text class="fault" x="{LEFT}" y="{height - 14}" fill="{FAILED}" font-weight="bold">'
                   f'fault: {escape(fault[:160])}</text>')
    out.append(f'<text x="{LEFT + 10}" y="{TOP - 12}" fill="#57606a">total '
               f'{total_ms:.1f} ms</text></svg>')
    return "".join(out)
