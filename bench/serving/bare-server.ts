// The baseline for bench/serving: a bare Fastify route that parses the same request and returns the
// same JSON shape Warden would, with no model, validation, logging or metrics.
import Fastify from 'fastify';

const port = Number(process.argv[2] ?? 0);
const app = Fastify({ logger: false });
app.post('/v2/models/:name/infer', async (req) => {
  const body = req.body as { id?: string };
  return {
    model_name: 'bike-demand',
    model_version: '1',
    id: body.id ?? 'x',
    outputs: [{ name: 'variable', datatype: 'FP32', shape: [1, 1], data: [254.3585205078125] }],
  };
});
await app.listen({ host: '127.0.0.1', port });
const addr = app.server.address();
process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : port}` })}\n`);
