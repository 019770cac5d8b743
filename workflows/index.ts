export { adminCommandWorkflow } from './admin-command';
export { appRequestWorkflow } from './app-request';
export { personalAppAddWorkflow, personalAppMoveWorkflow } from './personal-apps';
export { technicalContactMessageWorkflow } from './technical-contact-message';
