import type { z } from 'zod';

/**
 * One readable sentence per problem, each naming the field: "data.approverSteps.3.id: approver USER
 * u-1 appears in more than one step". A missing field reads "is required".
 */
export function describeIssues(issues: readonly z.core.$ZodIssue[], prefix = ''): string {
  return issues
    .map((issue) => {
      const field = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
      const missing = issue.code === 'invalid_type' && /received undefined/.test(issue.message);
      const message = missing ? 'is required' : issue.message;
      return field ? `${field}: ${message}` : message;
    })
    .join('; ');
}

/** Characters as a person counts them (code points), not UTF-16 units: an emoji is one character. */
export function characterCount(text: string): number {
  return [...text].length;
}
