import { isTransient } from '../../activities/failures';

/** Errors shaped as Prisma raises them for a raw query (P2010): meta.code is the database's SQLSTATE, or N/A. */
function rawQueryFailed(sqlState: string, message: string): Error {
  return Object.assign(new Error(`Raw query failed. Code: \`${sqlState}\`. Message: \`${message}\``), { code: 'P2010', meta: { code: sqlState, message } });
}

describe('failure classification', () => {
  test('a raw query without an answer from the database (a restart closed the connection) is transient', () => {
    expect(isTransient(rawQueryFailed('N/A', 'Server has closed the connection.'))).toBe(true);
  });

  test('a SQLSTATE named only in the message counts: a terminated connection (57P01) is transient, a check violation permanent', () => {
    const inMessageOnly = (sqlState: string, message: string) =>
      Object.assign(new Error(`Raw query failed. Code: \`${sqlState}\`. Message: \`${message}\``), { code: 'P2010', meta: {} });
    expect(isTransient(inMessageOnly('57P01', 'terminating connection due to administrator command'))).toBe(true);
    expect(isTransient(inMessageOnly('23514', 'violates check constraint'))).toBe(false);
  });

  test('a raw query that could not reach the database at all is transient', () => {
    expect(isTransient(rawQueryFailed('N/A', "Can't reach database server at 127.0.0.1:5433"))).toBe(true);
  });

  test("a raw query's SQLSTATE decides: a lost connection or a serialization failure is transient, a check violation permanent", () => {
    expect(isTransient(rawQueryFailed('08006', 'connection failure'))).toBe(true);
    expect(isTransient(rawQueryFailed('40001', 'could not serialize access'))).toBe(true);
    expect(isTransient(rawQueryFailed('23514', 'violates check constraint'))).toBe(false);
    expect(isTransient(rawQueryFailed('22P02', 'invalid input syntax'))).toBe(false);
  });

  test("Prisma's own codes: an unreachable database is transient, a failed query of the client permanent, a bug permanent", () => {
    expect(isTransient(Object.assign(new Error("Can't reach database server"), { code: 'P1001' }))).toBe(true);
    expect(isTransient(Object.assign(new Error('Foreign key constraint failed'), { code: 'P2003' }))).toBe(false);
    expect(isTransient(new TypeError('x is undefined'))).toBe(false);
  });
});
