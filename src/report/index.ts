/** The HTML report of `parry evaluate`. */
export { type ReportOptions, renderReport } from './html.js';
export { writeExamplePng } from './images.js';
