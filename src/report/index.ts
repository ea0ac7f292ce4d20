/** The HTML report of `parry evaluate`. */

export { writeExamplePng } from '../data/image-encoding.js';
export { type ReportOptions, renderReport } from './html.js';

/** The report's file name in an evaluation's output directory. */
export const REPORT_FILE = 'report.html';
export type { AccessStage, BlackBoxAccess, ReportResults } from './access-section.js';
