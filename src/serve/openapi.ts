/**
 * The service's OpenAPI 3.1 document, generated from the route schemas fastify validates and
 * serialises with (so the document cannot drift from what the routes do). OpenAPI 3.1 takes
 * JSON Schema as it is.
 */

/** What a route declares: the parts of fastify's route schema the document reads. */
export interface RouteDoc {
  method: string;
  url: string;
  summary?: string;
  /** Needs an API key (when the service has any). */
  secured?: boolean;
  body?: { content: Record<string, { schema: unknown }> };
  response?: Record<string, unknown>;
}

const STATUS_TEXT: Record<string, string> = {
  '200': 'OK',
  '400': 'The request is malformed: the error names the problem',
  '401': 'Missing or invalid API key',
  '403': 'Refused by a guard',
  '413': 'The body is larger than guards.input.maxBodyBytes',
  '415': 'Content type not accepted',
  '429': 'Rate limit or quota reached; see Retry-After',
  '503': 'Not ready, shutting down, or the quota store cannot be reached',
  '4xx': 'A client error: { error: { code, message } }',
};

/** Fastify's path syntax (`/a/:id`) in OpenAPI's (`/a/{id}`). */
const openApiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

export function openApiDocument(
  info: { title: string; version: string; description?: string },
  routes: readonly RouteDoc[],
  apiKeys: boolean,
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const operation: Record<string, unknown> = {
      ...(r.summary ? { summary: r.summary } : {}),
      responses: Object.fromEntries(
        Object.entries(r.response ?? { '200': {} }).map(([status, schema]) => [
          status,
          {
            description: STATUS_TEXT[status] ?? status,
            content: { 'application/json': { schema } },
          },
        ]),
      ),
    };
    if (r.body) operation.requestBody = { required: true, content: r.body.content };
    if (r.secured && apiKeys) operation.security = [{ bearer: [] }, { apiKey: [] }];
    const p = openApiPath(r.url);
    paths[p] = { ...(paths[p] ?? {}), [r.method.toLowerCase()]: operation };
  }
  return {
    openapi: '3.1.0',
    info,
    paths,
    ...(apiKeys
      ? {
          components: {
            securitySchemes: {
              bearer: { type: 'http', scheme: 'bearer' },
              apiKey: { type: 'apiKey', in: 'header', name: 'x-api-key' },
            },
          },
        }
      : {}),
  };
}
