import { addBusinessDays, DEFAULT_BUSINESS_CALENDAR, stepTimers, subtractBusinessDays, type BusinessCalendar } from '../../rules/business-calendar';

const WEEK: BusinessCalendar['workingDays'] = ['MON', 'TUE', 'WED', 'THU', 'FRI'];
const berlin: BusinessCalendar = { timeZone: 'Europe/Berlin', workingDays: WEEK };
const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();
const DAY = 24 * 3600 * 1000;

describe('business days', () => {
  test('over a weekend: Friday + 1 is Monday, at the same local time', () => {
    expect(iso(addBusinessDays(at('2026-11-27T15:00:00Z'), 1, DEFAULT_BUSINESS_CALENDAR))).toBe('2026-11-30T15:00:00.000Z');
    expect(iso(addBusinessDays(at('2026-11-27T15:00:00Z'), 5, DEFAULT_BUSINESS_CALENDAR))).toBe('2026-12-04T15:00:00.000Z');
  });

  test('started on a weekend, counting begins with Monday', () => {
    expect(iso(addBusinessDays(at('2026-11-28T10:00:00Z'), 1, DEFAULT_BUSINESS_CALENDAR))).toBe('2026-11-30T10:00:00.000Z');
    expect(iso(addBusinessDays(at('2026-11-29T10:00:00Z'), 3, DEFAULT_BUSINESS_CALENDAR))).toBe('2026-12-02T10:00:00.000Z');
  });

  test('across the spring clock change the local time holds: 71 hours of UTC', () => {
    // Friday 27 March 2026, 10:00 CET; clocks go forward on Sunday the 29th.
    const friday = at('2026-03-27T09:00:00Z');
    const monday = addBusinessDays(friday, 1, berlin);
    expect(iso(monday)).toBe('2026-03-30T08:00:00.000Z');
    expect(monday - friday).toBe(3 * DAY - 3600_000);
    expect(subtractBusinessDays(monday, 1, berlin)).toBe(friday);
  });

  test('across the autumn clock change: 73 hours of UTC', () => {
    const friday = at('2026-10-23T08:00:00Z'); // 10:00 CEST; clocks go back on Sunday the 25th
    expect(iso(addBusinessDays(friday, 1, berlin))).toBe('2026-10-26T09:00:00.000Z');
  });

  test('the local date decides, not the UTC date', () => {
    // Friday 23:30 in New York is Saturday in UTC; one business day later is Monday 23:30 New York time.
    const newYork: BusinessCalendar = { timeZone: 'America/New_York', workingDays: WEEK };
    expect(iso(addBusinessDays(at('2026-12-05T04:30:00Z'), 1, newYork))).toBe('2026-12-08T04:30:00.000Z');
  });

  test('holidays and the working week are the org\'s', () => {
    const christmas: BusinessCalendar = { timeZone: 'UTC', workingDays: WEEK, holidays: ['2026-12-25', '2026-12-28'] };
    expect(iso(addBusinessDays(at('2026-12-24T09:00:00Z'), 1, christmas))).toBe('2026-12-29T09:00:00.000Z');
    const sundayToThursday: BusinessCalendar = { timeZone: 'Asia/Jerusalem', workingDays: ['SUN', 'MON', 'TUE', 'WED', 'THU'] };
    // Thursday 10:00 local + 1 is Sunday 10:00 local.
    expect(iso(addBusinessDays(at('2026-12-03T08:00:00Z'), 1, sundayToThursday))).toBe('2026-12-06T08:00:00.000Z');
  });

  test('a wall-clock time that the clock change skips moves by the gap', () => {
    // Saturday 28 March 2026 02:30 CET; 02:30 does not exist on Sunday the 29th in Berlin.
    const sundaysOnly: BusinessCalendar = { timeZone: 'Europe/Berlin', workingDays: ['SUN'] };
    expect(iso(addBusinessDays(at('2026-03-28T01:30:00Z'), 1, sundaysOnly))).toBe('2026-03-29T01:30:00.000Z');
  });

  test('the worst calendar the contract allows still finds its day: one working day a week, 366 holidays, 90 days', () => {
    const holidays = Array.from({ length: 366 }, (_, index) => iso(at('2027-01-04T00:00:00Z') + index * 7 * DAY).slice(0, 10));
    const mondaysOff: BusinessCalendar = { timeZone: 'UTC', workingDays: ['MON'], holidays };
    const start = at('2027-01-01T12:00:00Z');
    // Every Monday from 2027-01-04 is a holiday for 366 weeks; the 90th working Monday comes 90 weeks after those.
    expect(addBusinessDays(start, 90, mondaysOff)).toBe(at('2027-01-04T12:00:00Z') + (366 + 89) * 7 * DAY);
  });

  test('a calendar with no working day at all (the contract refuses it) counts calendar days instead of searching for ever', () => {
    const start = at('2027-01-01T12:00:00Z');
    expect(addBusinessDays(start, 2, { timeZone: 'UTC', workingDays: [] })).toBe(start + 2 * DAY);
  });

  test('step timers: calendar days keep their arithmetic; business days use the calendar, the reminder in the same unit', () => {
    const now = at('2026-11-27T15:00:00Z'); // a Friday
    expect(stepTimers({ timeoutDays: 7, reminderDaysBefore: 2 }, now, berlin)).toEqual({ deadline: now + 7 * DAY, reminderAt: now + 5 * DAY });
    expect(stepTimers({ timeoutDays: 3 }, now, undefined)).toEqual({ deadline: now + 3 * DAY, reminderAt: null });
    const business = stepTimers({ timeoutDays: 3, businessDays: true, reminderDaysBefore: 1 }, now, undefined);
    expect(iso(business.deadline)).toBe('2026-12-02T15:00:00.000Z'); // Wednesday
    expect(iso(business.reminderAt!)).toBe('2026-12-01T15:00:00.000Z'); // Tuesday
  });
});
