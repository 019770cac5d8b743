import type { OutgoingCommand } from '../command-channel';
import { plainUserInsert } from '../postgres-insert';
import { now, perSecond, ratio } from '../stats';
import { partialNote, rate, times, type Scenario } from './scenario';

/**
 * A directory connector syncing N users of one org: N `selfservice.directory.user-upserted.v1` on the
 * directory topic, keyed by the org (so in order, on one partition), timed until every one has its
 * result. Beside it: the same N rows inserted into PostgreSQL directly (multi-row INSERTs).
 */
export const directorySync: Scenario = async ({ backend, channel, watch, org, options }) => {
  const count = options.directory;
  const orgId = org.directoryOrgId;
  const domain = `${orgId}.example`;
  const users = Array.from({ length: count }, (_, index) => ({ orgId, userId: `${orgId}-user${index}`, email: `${orgId}-user${index}@${domain}` }));
  const plain = await plainUserInsert(backend.ownerDatabaseUrl, users, options.insertBatch);
  const plainRate = perSecond(plain.rows, plain.ms);

  const commands: OutgoingCommand[] = users.map((user) => ({
    topic: 'directory',
    type: 'selfservice.directory.user-upserted.v1',
    data: { orgId, userId: user.userId, email: user.email, displayName: user.userId, status: 'ACTIVE', adminRoles: [] },
    key: orgId,
  }));
  const started = now();
  const sent = await channel.sendMany(commands);
  const arrived = await watch.results.waitAll(sent.map((command) => command.commandId), started + options.timeoutSeconds * 1000);
  const results = sent.flatMap((command) => {
    const result = watch.results.get(command.commandId);
    return result ? [result] : [];
  });
  const elapsed = (arrived === count ? Math.max(...results.map((result) => result.at)) : now()) - started;
  const accepted = results.filter((result) => result.accepted).length;
  const eventRate = perSecond(arrived, elapsed);
  const ratios = { rate: ratio(eventRate, plainRate) };
  return {
    name: 'directory',
    title: `Directory sync: ${count} user-upserted events for one org through Kafka`,
    complete: arrived === count,
    system: { events: count, results: arrived, accepted, seconds: elapsed / 1000, rate: eventRate },
    baseline: { rows: plain.rows, batchSize: options.insertBatch, seconds: plain.ms / 1000, rate: plainRate },
    ratios,
    rows: [{ metric: 'rate (results / rows inserted)', system: rate(eventRate), baseline: rate(plainRate), ratio: times(ratios.rate) }],
    notes: [
      `baseline: plain multi-row INSERT into a scratch table (created and dropped), batches of ${options.insertBatch}, via pg`,
      ...(accepted < arrived ? [`${arrived - accepted} rejected`] : []),
      ...partialNote('results', arrived, count, options.timeoutSeconds),
    ],
  };
};
