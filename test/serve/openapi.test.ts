import { describe, expect, it } from 'vitest';
import { argmax } from '../../src/serve/guarded-predictor.js';
import { openApiDocument } from '../../src/serve/openapi.js';

describe('openApiDocument', () => {
  const routes = [
    {
      method: 'POST',
      url: '/v1/items/:id',
      summary: 'Change an item',
      secured: true,
      body: { content: { 'application/json': { schema: { type: 'object' } } } },
      response: { 200: { type: 'object' }, 404: { type: 'object' } },
    },
    { method: 'GET', url: '/v1/items/:id', summary: 'Read an item', secured: true },
    { method: 'GET', url: '/healthz' },
  ];

  it('writes fastify paths in OpenAPI syntax, one operation per method', () => {
    const doc = openApiDocument({ title: 't', version: '1' }, routes, true);
    expect(doc.openapi).toBe('3.1.0');
    const paths = doc.paths as Record<string, Record<string, Record<string, unknown>>>;
    expect(Object.keys(paths)).toEqual(['/v1/items/{id}', '/healthz']);
    expect(Object.keys(paths['/v1/items/{id}']).sort()).toEqual(['get', 'post']);
    const post = paths['/v1/items/{id}'].post;
    expect(post.summary).toBe('Change an item');
    expect(post.requestBody).toEqual({
      required: true,
      content: { 'application/json': { schema: { type: 'object' } } },
    });
    expect(post.responses).toEqual({
      200: { description: 'OK', content: { 'application/json': { schema: { type: 'object' } } } },
      404: { description: '404', content: { 'application/json': { schema: { type: 'object' } } } },
    });
    expect(post.security).toEqual([{ bearer: [] }, { apiKey: [] }]);
    expect(paths['/healthz'].get.security).toBeUndefined();
    expect(Object.keys(paths['/healthz'].get.responses as object)).toEqual(['200']);
  });

  it('an open service has no security requirements or schemes', () => {
    const doc = openApiDocument({ title: 't', version: '1' }, routes, false);
    const paths = doc.paths as Record<string, Record<string, Record<string, unknown>>>;
    expect(paths['/v1/items/{id}'].post.security).toBeUndefined();
    expect(doc.components).toBeUndefined();
  });
});

describe('argmax', () => {
  it('picks the largest value, the lowest index among ties, within a row', () => {
    expect(argmax([0.1, 0.7, 0.2])).toBe(1);
    expect(argmax([0.4, 0.1, 0.4])).toBe(0);
    // Row 1 (of width 3) of a flat batch.
    expect(argmax([9, 9, 9, 0.2, 0.3, 0.3], 3, 3)).toBe(1);
  });
});
