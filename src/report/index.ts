/** The HTML report of `parry evaluate`. */

export { writeExamplePng } from '../data/image-encoding.js';
export { type ReportOptions, renderReport } from './html.js';
