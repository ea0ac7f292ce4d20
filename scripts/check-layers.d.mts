/** Types of scripts/check-layers.mjs for the tests that import it. */
export declare const LAYERS: string[][];
export declare function checkLayers(srcDir: string): string[];
