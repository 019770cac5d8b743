import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Typed search attributes that operators filter on in the Temporal Web UI, for example
 * `SelfServiceStatus = "PENDING" AND SelfServiceApproverIds = "u-42"`. The local stack registers them
 * when it starts the Temporal server (services/stack.sh); a production namespace needs them too.
 */
export const SelfServiceOrgId = defineSearchAttributeKey('SelfServiceOrgId', SearchAttributeType.KEYWORD);
export const SelfServiceAppId = defineSearchAttributeKey('SelfServiceAppId', SearchAttributeType.KEYWORD);
export const SelfServiceRequesterId = defineSearchAttributeKey('SelfServiceRequesterId', SearchAttributeType.KEYWORD);
export const SelfServiceStatus = defineSearchAttributeKey('SelfServiceStatus', SearchAttributeType.KEYWORD);
export const SelfServiceApproverIds = defineSearchAttributeKey('SelfServiceApproverIds', SearchAttributeType.KEYWORD_LIST);
export const SelfServiceCommandType = defineSearchAttributeKey('SelfServiceCommandType', SearchAttributeType.KEYWORD);

export const ALL_SEARCH_ATTRIBUTES = [
  SelfServiceOrgId,
  SelfServiceAppId,
  SelfServiceRequesterId,
  SelfServiceStatus,
  SelfServiceApproverIds,
  SelfServiceCommandType,
] as const;
