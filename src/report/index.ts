/** Reports: the HTML page of an evaluation and the example images it shows. */
export { renderReport } from './html.js';
