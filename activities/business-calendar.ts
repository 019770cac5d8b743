import { businessCalendar as businessCalendarSchema, WEEKDAYS, type BusinessCalendarInput, type Command } from '../events/inbound';
import { outboundEvents } from '../events/outbound';
import { Prisma } from '../prisma/client/client';
import type { Accepted, AuditDraft } from '../rules/commands';
import { requireAdmin } from './admin-authorization';
import type { Transaction } from './database';
import { parseStored } from './stored';

/**
 * The org's business calendar (time zone, working days, holidays): what a step counted in business days
 * counts. A super admin sets or removes it; a request takes the calendar of its submission, so a change
 * applies to requests submitted after it.
 */

type SetCalendarCommand = Extract<Command, { type: 'selfservice.business-calendar.set-requested.v1' }>;

/** One spelling of a calendar: working days in week order, holidays sorted and once each. */
function normalized(calendar: BusinessCalendarInput | null): BusinessCalendarInput | null {
  if (!calendar) return null;
  const workingDays = WEEKDAYS.filter((day) => calendar.workingDays.includes(day));
  const holidays = [...new Set(calendar.holidays ?? [])].sort();
  return { timeZone: calendar.timeZone, workingDays, ...(holidays.length > 0 ? { holidays } : {}) };
}

export async function setBusinessCalendar(tx: Transaction, { data }: SetCalendarCommand): Promise<Accepted> {
  const { orgId, actorId } = data;
  const after = normalized(data.calendar);
  const audit: AuditDraft = { orgId, actorId, action: 'settings.business-calendar.set', after };
  await requireAdmin(tx, { orgId, actorId, roles: ['SUPER_ADMIN'], action: audit.action });

  const current = await tx.orgSettings.upsert({ where: { orgId }, create: { orgId }, update: {}, select: { businessCalendar: true } });
  const before = current.businessCalendar ? parseStored(businessCalendarSchema, current.businessCalendar, `the business calendar of org ${orgId}`) : null;
  audit.before = before;
  if (JSON.stringify(normalized(before)) === JSON.stringify(after)) return { details: { changed: false, calendar: after }, audit };

  await tx.orgSettings.update({ where: { orgId }, data: { businessCalendar: after ?? Prisma.DbNull } });
  return {
    details: { changed: true, calendar: after },
    audit,
    events: [{ name: 'business-calendar-changed', ...outboundEvents.businessCalendarChanged({ orgId, actorId, before, after }) }],
  };
}
