/**
 * The report's black-box parts on hand-made results: a white-box evaluation gets none of them, an
 * `access` of mode 'black-box' gets the banner first in the header, the title from its URL and the
 * attack table; the guard summary reads parry's GET /v1/model answer.
 */
import { describe, expect, it } from 'vitest';
import { describeGuards } from '../../src/report/access-section.js';
import { type BlackBoxAccess, renderReport } from '../../src/report/index.js';
import { makeResults } from './fixture.js';

const access: BlackBoxAccess = {
  mode: 'black-box',
  url: 'http://10.0.0.7:8080',
  outputs: 'labels',
  adapter: null,
  guards: { auth: 'open', applied: ['preprocess:squeeze-bits'] },
  budget: 12345,
  queries: 6789,
  requests: 40,
  waitedSeconds: 3,
  abstentions: 2,
  stages: [
    {
      stage: 'square',
      status: 'skipped',
      seed: 0,
      share: 100,
      queries: 0,
      seconds: 0,
      note: 'the endpoint answers labels only: Square needs scores',
      refusal: null,
    },
    {
      stage: 'hsj',
      status: 'stopped',
      seed: 1,
      share: 100,
      queries: 7,
      seconds: 1,
      note: 'too many requests',
      refusal: { status: 429, code: 'quota_exceeded' },
    },
  ],
};

describe('describeGuards', () => {
  it('names the guards a parry service applies, its key check and its monitor', () => {
    expect(describeGuards(null)).toBe('unknown (not a parry service)');
    expect(describeGuards({ auth: 'open', applied: [] })).toBe('none');
    expect(
      describeGuards({
        auth: 'api-key',
        applied: ['preprocess:median', 'output:top-k'],
        extractionMonitor: { method: 'prada', onAlarm: 'throttle' },
      }),
    ).toBe('api-key, preprocess:median, output:top-k, prada (throttle)');
  });
});

describe('the black-box mark', () => {
  it('is absent from a white-box evaluation', () => {
    for (const results of [makeResults(), { ...makeResults(), access: null }]) {
      const page = renderReport(results);
      expect(page).not.toContain('id="black-box"');
      expect(page).not.toContain('<section id="attacks">');
      expect(page).toMatch(/<title>parry evaluation — /);
    }
  });

  it('heads the page of black-box results: banner, URL title, attacks and stages', () => {
    const page = renderReport({ ...makeResults(), access });
    expect(page).toContain('<title>parry audit — http://10.0.0.7:8080</title>');
    const header = page.slice(page.indexOf('<header>'), page.indexOf('</header>'));
    // The banner comes right after the title, before the facts and the honesty banner.
    expect(header.indexOf('id="black-box"')).toBeGreaterThan(header.indexOf('</h1>'));
    expect(header.indexOf('id="black-box"')).toBeLessThan(header.indexOf('<dl class="facts">'));
    expect(header).toContain('6,789 of a budget of 12,345 queries, in 40 requests');
    expect(header).toContain('(3 s waited out on Retry-After); the endpoint answers labels only');
    expect(header).toContain('Guards the endpoint reports: preprocess:squeeze-bits.');
    expect(header).toContain('<li>Stopped: hsj after 7 queries — too many requests</li>');
    expect(header).toContain('2 answers were abstentions');
    const attacks = page.slice(page.indexOf('<section id="attacks">'));
    // The fixture's three attacks on three targets and two norms: every cell is a row.
    const cells = makeResults().targets.reduce((n, t) => n + t.attacks.length, 0);
    expect(attacks.slice(0, attacks.indexOf('</table>')).split('<tr><td>').length - 1).toBe(cells);
    // The refusal is named when the note does not name it.
    expect(attacks).toContain('<td>429 quota_exceeded: too many requests</td>');
    expect(attacks).toContain('<td class="num">0 / 100</td>');
  });
});
