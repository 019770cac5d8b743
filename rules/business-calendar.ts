/**
 * Business days: the timer maths of steps whose timeouts are counted in an org's working days. Pure
 * and deterministic (it runs inside the request workflow): time comes in as epoch milliseconds, and
 * the time zone's rules come from the runtime's ICU data through `Intl.DateTimeFormat`.
 *
 * "n business days after t" is the same wall-clock time, in the org's time zone, on the n-th working
 * day after t's local date (a day of `workingDays` that is not one of `holidays`). Started on a
 * weekend, Friday 10:00 + 1 business day is Monday 10:00 local time, whatever the clock change in
 * between. A wall-clock time that a clock change skips that day moves by the size of the gap.
 */

export type Weekday = 'MON' | 'TUE' | 'WED' | 'THU' | 'FRI' | 'SAT' | 'SUN';

export interface BusinessCalendar {
  timeZone: string;
  workingDays: Weekday[];
  /** Local dates (YYYY-MM-DD) that are not working days. */
  holidays?: string[];
}

/** Used for a business-day step of an org that has not set a calendar. */
export const DEFAULT_BUSINESS_CALENDAR: BusinessCalendar = { timeZone: 'UTC', workingDays: ['MON', 'TUE', 'WED', 'THU', 'FRI'] };

const DAY_MS = 24 * 60 * 60 * 1000;
/** Ten years of days: past it, a calendar that has (almost) no working day counts calendar days instead. */
const SEARCH_LIMIT_DAYS = 3660;
const WEEKDAY_OF_UTC_DAY: readonly Weekday[] = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

interface WallClock {
  /** The local date as midnight UTC of that date (a day number in ms), so dates step by DAY_MS. */
  date: number;
  /** Milliseconds since local midnight. */
  time: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** The local wall clock of an instant, as if it were UTC (whole seconds; the milliseconds are kept). */
function localAsUtc(instant: number, timeZone: string): number {
  const parts: Record<string, number> = {};
  for (const part of formatterFor(timeZone).formatToParts(new Date(instant))) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  const seconds = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour! % 24, parts.minute!, parts.second!);
  return seconds + (((instant % 1000) + 1000) % 1000);
}

function wallClockOf(instant: number, timeZone: string): WallClock {
  const local = localAsUtc(instant, timeZone);
  const date = Math.floor(local / DAY_MS) * DAY_MS;
  return { date, time: local - date };
}

/** The instant at which the wall clock of `timeZone` shows `local` (read as UTC). */
function instantOf(local: number, timeZone: string): number {
  const firstGuess = local - (localAsUtc(local, timeZone) - local);
  return local - (localAsUtc(firstGuess, timeZone) - firstGuess);
}

function isoDate(date: number): string {
  return new Date(date).toISOString().slice(0, 10);
}

export function isWorkingDay(date: number, calendar: BusinessCalendar): boolean {
  const weekday = WEEKDAY_OF_UTC_DAY[new Date(date).getUTCDay()]!;
  return calendar.workingDays.includes(weekday) && !(calendar.holidays ?? []).includes(isoDate(date));
}

/** `days` working days after (`direction` 1) or before (-1) `instant`, at the same local time. */
function moveBusinessDays(instant: number, days: number, calendar: BusinessCalendar, direction: 1 | -1): number {
  const start = wallClockOf(instant, calendar.timeZone);
  let date = start.date;
  let counted = 0;
  for (let step = 0; counted < days; step += 1) {
    if (step >= SEARCH_LIMIT_DAYS) return instant + direction * days * DAY_MS;
    date += direction * DAY_MS;
    if (isWorkingDay(date, calendar)) counted += 1;
  }
  return instantOf(date + start.time, calendar.timeZone);
}

export function addBusinessDays(instant: number, days: number, calendar: BusinessCalendar): number {
  return moveBusinessDays(instant, days, calendar, 1);
}

export function subtractBusinessDays(instant: number, days: number, calendar: BusinessCalendar): number {
  return moveBusinessDays(instant, days, calendar, -1);
}

/** How a step (or its escalation) waits: a timeout, an optional reminder, in calendar or business days. */
export interface StepTiming {
  timeoutDays: number;
  /** Count the timeout and the reminder in business days. */
  businessDays?: boolean;
  reminderDaysBefore?: number;
}

/** When a step that starts at `now` times out, and when it reminds (or null). */
export function stepTimers(timing: StepTiming, now: number, calendar: BusinessCalendar | undefined): { deadline: number; reminderAt: number | null } {
  if (!timing.businessDays) {
    const deadline = now + timing.timeoutDays * DAY_MS;
    return { deadline, reminderAt: timing.reminderDaysBefore ? deadline - timing.reminderDaysBefore * DAY_MS : null };
  }
  const used = calendar ?? DEFAULT_BUSINESS_CALENDAR;
  const deadline = addBusinessDays(now, timing.timeoutDays, used);
  return { deadline, reminderAt: timing.reminderDaysBefore ? subtractBusinessDays(deadline, timing.reminderDaysBefore, used) : null };
}
