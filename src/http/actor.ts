import type { FastifyRequest } from 'fastify';

/** Who made a change, for histories: the API key's id and name, or that auth was off. */
export function actorOf(req: FastifyRequest): string {
  const k = req.apiKey;
  return k ? `key ${k.id} (${k.name}, ${k.role})` : 'anonymous (auth off)';
}
