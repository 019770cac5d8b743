export { adminCommandWorkflow } from './admin-command';
