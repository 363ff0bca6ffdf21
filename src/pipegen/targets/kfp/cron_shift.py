"""Moving a 5-field cron expression from one fixed UTC offset to another, where that is exact."""

from __future__ import annotations

from itertools import product


def _expand(field: str, low: int, high: int) -> list[int] | None:
    """The values of a numeric cron field (`*`, `a`, `a-b`, steps, lists), or None for names and `?`/`L`/`W`."""
    values: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        if not (step_text.isdigit() or step_text == ""):
            return None
        step = int(step_text) if step_text else 1
        if base == "*":
            start, end = low, high
        elif base.isdigit():
            start = int(base)
            end = high if step_text else start
        elif "-" in base and all(x.isdigit() for x in base.split("-", 1)):
            start, end = (int(x) for x in base.split("-", 1))
        else:
            return None
        if step < 1 or not low <= start <= end <= high:
            return None
        values.update(range(start, end + 1, step))
    return sorted(values)


def _field(values: set[int], low: int, high: int) -> str:
    return "*" if values == set(range(low, high + 1)) else ",".join(str(v) for v in sorted(values))


def shift_cron(cron: str, minutes: int) -> str | None:
    """The cron expression firing `minutes` earlier on the clock (e.g. local time -> UTC), or None if not exact.

    Exact when every firing time moves to a time the shifted expression can list on its own: minute and hour
    fields become lists, and a firing that crosses midnight is allowed only where the day fields are `*`
    (or, for the weekday field alone, when every firing crosses the same way).
    """
    fields = cron.split()
    if len(fields) != 5:
        return None
    minute_f, hour_f, dom, month, weekday = fields
    mins, hours = _expand(minute_f, 0, 59), _expand(hour_f, 0, 23)
    if mins is None or hours is None:
        return None
    moved: set[tuple[int, int]] = set()
    day_shifts: set[int] = set()
    for h, m in product(hours, mins):
        total = h * 60 + m - minutes
        day_shifts.add(total // 1440)
        moved.add(divmod(total % 1440, 60))
    new_hours, new_mins = {h for h, _ in moved}, {m for _, m in moved}
    if len(moved) != len(new_hours) * len(new_mins):
        return None  # the shifted times are not one hours x minutes grid
    if day_shifts != {0}:
        if dom != "*" or month != "*":
            return None
        if weekday != "*":
            days = _expand(weekday, 0, 7)  # 0 and 7 are both Sunday
            if days is None or len(day_shifts) != 1:
                return None
            shift = day_shifts.pop()
            weekday = _field({(d + shift) % 7 for d in days}, 0, 6)
    return " ".join([_field(new_mins, 0, 59), _field(new_hours, 0, 23), dom, month, weekday])
