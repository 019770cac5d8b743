export { adminCommandWorkflow } from './admin-command';
export { appRequestWorkflow } from './app-request';
export { delegationWorkflow } from './delegation';
export { personalAppAddWorkflow, personalAppMoveWorkflow } from './personal-apps';
export { technicalContactMessageWorkflow } from './technical-contact-message';
