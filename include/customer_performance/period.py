"""The report period: which month a run reports, derived from its logical date
(docs/architecture.md, "The run and its period")."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class ReportPeriod:
    """A half-open window [start, end) of whole days inside one calendar month."""

    start: date
    end: date  # exclusive

    @property
    def month_start(self) -> date:
        return self.start.replace(day=1)

    @property
    def report_month(self) -> date:
        """The partition key: the first day of the reported month."""
        return self.month_start

    @property
    def key(self) -> str:
        """``YYYYMM``, used in names."""
        return self.start.strftime("%Y%m")

    @property
    def label(self) -> str:
        """``july2025``, the seed's file-name form."""
        return f"{calendar.month_name[self.start.month].lower()}{self.start.year}"

    @property
    def is_complete_month(self) -> bool:
        return self.end == _next_month(self.month_start)

    @property
    def previous_month(self) -> ReportPeriod:
        prev_start = (self.month_start - timedelta(days=1)).replace(day=1)
        return ReportPeriod(prev_start, self.month_start)

    def describe(self) -> str:
        """What a person calls the period: ``July 2025 (month close)``, ``1-14 August 2025 (month to date)``."""
        month = f"{calendar.month_name[self.start.month]} {self.start.year}"
        if self.is_complete_month and self.start == self.month_start:
            return f"{month} (month close)"
        last = (self.end - timedelta(days=1)).day
        days = f"{self.start.day}" if last == self.start.day else f"{self.start.day}-{last}"
        return f"{days} {month} (month to date)"

    def as_params(self) -> dict[str, object]:
        return {"period_start": self.start, "period_end": self.end, "report_month": self.report_month}

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{(self.end - timedelta(days=1)).isoformat()}"


def _next_month(d: date) -> date:
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1)


def add_months(month: date, n: int) -> date:
    """The first day of the month ``n`` months after (before, when negative) ``month``'s."""
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def month_period(report_month: str) -> ReportPeriod:
    """The whole month ``YYYY-MM``."""
    m = _MONTH.match(report_month or "")
    if not m:
        raise ValueError(f"report_month must look like YYYY-MM (e.g. 2025-07), got {report_month!r}")
    start = date(int(m.group(1)), int(m.group(2)), 1)
    return ReportPeriod(start, _next_month(start))


def period_for(logical_date: datetime | date, report_month: str | None = None) -> ReportPeriod:
    """The period a run reports.

    A run with logical date D reports month-to-date of the month that contains D - 1 day, through
    the end of D - 1: the 1 August run closes July, the 15 August run covers 1-14 August.
    ``report_month`` forces the whole of that month.
    """
    if report_month:
        return month_period(report_month)
    day = logical_date.date() if isinstance(logical_date, datetime) else logical_date
    last_day = day - timedelta(days=1)
    return ReportPeriod(last_day.replace(day=1), day)


def month_close_dates(first_month: str, last_month: str) -> list[date]:
    """Logical dates (the 1st of the following month) of the runs that close each month."""
    first, last = month_period(first_month), month_period(last_month)
    if last.start < first.start:
        raise ValueError(f"{last_month} is before {first_month}")
    dates, p = [], first
    while p.start <= last.start:
        dates.append(p.end)
        p = ReportPeriod(p.end, _next_month(p.end))
    return dates
