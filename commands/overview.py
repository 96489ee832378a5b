"""The class at a glance (`!overview`): learners by school × assignments, as a picture and in words.

Each cell is one learner's standing on one assignment — graded (with the score), returned, handed
in on time or late, an extension, missing, not due yet — coloured with a legend. The picture is
drawn with matplotlib's Agg backend (no display), uploaded through the media API and sent as an
``m.image`` whose caption says the same in words, for screen readers and text-only clients.
A learner's overview is her own row, in her work room.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from datetime import datetime

from . import when
from .context import Context, Media, Role, Where
from .converters import number
from .finding import by_school, learners_of, teaches
from .marking import private_room, show_in
from .registry import registry
from .standing import Standing, standings

# status → (words in the legend, cell colour, text colour)
STATUSES: dict[str, tuple[str, str, str]] = {
    "graded": ("graded (score)", "#2e7d32", "white"),
    "returned": ("returned for more work", "#f9a825", "black"),
    "on time": ("handed in on time", "#1565c0", "white"),
    "late": ("handed in late", "#ef6c00", "white"),
    "extension": ("extension, not handed in", "#6a1b9a", "white"),
    "missing": ("missing", "#c62828", "white"),
    "not due": ("not due yet", "#e0e0e0", "black"),
}
MAX_PIXELS = 12_000  # the longer side of the picture, whatever the class's size
CAPTION_LIMIT = 20_000  # longer words go in a message of their own, before the picture


@dataclass(frozen=True)
class Cell:
    status: str
    text: str  # what the cell says: the score, or a word


def cell(s: Standing, now: datetime) -> Cell:
    if s.grade is not None and (s.returned is None or s.grade.graded_at >= s.returned.returned_at):
        return Cell("graded", f"{number(s.grade.score)}/{number(s.grade.max_score)}")
    if s.returned is not None:
        return Cell("returned", "returned")
    if s.submission is not None:
        return Cell("late", "late") if s.late_by else Cell("on time", "on time")
    if s.extension is not None:
        return Cell("extension", "extension")
    return Cell("missing", "missing") if now > s.due else Cell("not due", "not due")


def words(c: Cell) -> str:
    return f"graded {c.text}" if c.status == "graded" else c.text


def draw(title: str, columns: list[str], groups: list[tuple[str, list[tuple[str, list[Cell]]]]]) -> tuple[bytes, int, int]:
    """The grid as a PNG: (bytes, width, height in pixels)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle

    rows = sum(1 + len(learners) for _, learners in groups)
    longest = max([len(u) for _, learners in groups for u, _ in learners] + [len(h) for h, _ in groups] + [10])
    label_w, cell_w, row_h = 0.6 + 0.085 * longest, 1.15, 0.36
    width = label_w + cell_w * max(1, len(columns)) + 0.3
    top, legend_h = 0.9, 0.3 + 0.3 * ((len(STATUSES) + 3) // 4)
    height = top + row_h * (rows + 1) + legend_h
    width = max(width, 8.5)  # room for the legend
    dpi = min(100, MAX_PIXELS / max(width, height))
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    ax.text(0.2, 0.5, title, fontsize=13, fontweight="bold", va="center")
    y = top
    for i, column in enumerate(columns):
        ax.text(label_w + cell_w * (i + 0.5), y + row_h / 2, column, ha="center", va="center", fontsize=10, fontweight="bold")
    y += row_h
    for heading, learners in groups:
        ax.text(0.2, y + row_h / 2, heading, va="center", fontsize=10, fontweight="bold", color="#333333")
        y += row_h
        for user, cells in learners:
            ax.text(0.35, y + row_h / 2, user, va="center", fontsize=9)
            for i, c in enumerate(cells):
                _, face, ink = STATUSES[c.status]
                x = label_w + cell_w * i
                ax.add_patch(Rectangle((x + 0.03, y + 0.03), cell_w - 0.06, row_h - 0.06, facecolor=face, edgecolor="white"))
                ax.text(x + cell_w / 2, y + row_h / 2, c.text, ha="center", va="center", fontsize=9, color=ink)
            y += row_h
    handles = [Patch(facecolor=face, label=label) for label, face, _ in STATUSES.values()]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=9, frameon=False)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=dpi)
    return out.getvalue(), round(width * dpi), round(height * dpi)


@registry.command(
    "overview",
    who=Role.MEMBER,
    where=Where.CLASS,
    summary="The class at a glance, as a picture: learners by school × assignments, coloured by status.",
    details=(
        "Teachers get every learner, in the staff room or our direct message; each cell is graded (with the score), "
        "returned, on time, late, extension, missing or not due yet, with a legend, and the same in words. "
        "Learners get their own row, in their work room."
    ),
    reads_only=True,
)
async def overview(ctx: Context) -> None:
    klass, now, tz = ctx.klass, ctx.now, ctx.tz
    teacher = teaches(ctx)
    found = await ctx.repos.assignments.of_class(klass.id, published_only=True)
    learners = await learners_of(ctx) if teacher else [ctx.caller.user_id]
    columns = [(a, await standings(ctx.repos, a, learners)) for a in found]
    groups = [
        (heading, [(u, [cell(marks[u], now) for _, marks in columns]) for u in users])
        for heading, users in await by_school(ctx, learners)
    ]
    whose = klass.name if teacher else f"your work in {klass.name}"
    title = f"{klass.name} — {when.show(now, tz)}" if teacher else f"{ctx.caller.user_id} in {klass.name}"
    lines = [
        f"**Overview of {whose}** — {len(learners)} learner{'s' if len(learners) != 1 else ''} × "
        f"{len(found)} assignment{'s' if len(found) != 1 else ''}, as of {when.show(now, tz)}"
    ]
    if found:
        lines.append("Assignments: " + ", ".join(f"{a.label}" for a, _ in columns))
    else:
        lines.append(f"{klass.name} has no posted assignments yet.")
    if not learners:
        lines.append("No learners in the class yet.")
    for heading, rows in groups:
        lines.append(f"\n**{heading}**")
        for user, cells in rows:
            said = " · ".join(f"{a.short_id} {words(c)}" for (a, _), c in zip(columns, cells)) or "nothing to show yet"
            lines.append(f"- {user} — {said}")
    text = "\n".join(lines)
    png, width, height = await asyncio.to_thread(draw, title, [a.short_id for a in found], groups)
    filename = f"overview-{klass.code}.png"
    url = await ctx.matrix.upload(png, filename, "image/png")
    image = Media(url, filename, "image/png", len(png), width, height)
    room_id = await private_room(ctx, None if teacher else ctx.caller.user_id)
    if len(text) <= CAPTION_LIMIT:  # one event: the picture, with the words as its caption
        show_in(ctx, room_id, "", (image, text))
    else:
        show_in(ctx, room_id, text, (image, f"**Overview of {whose}**: the list is in the message before this picture."))
    if room_id != ctx.room_id:
        where = f"the staff room of {klass.name}" if teacher else "your work room"
        ctx.reply(f"I've put the overview in {where}, where it stays private.")

