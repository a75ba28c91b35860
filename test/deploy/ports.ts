import net from 'node:net';

/**
 * A free loopback port in [from, to]: the deploy tests keep to 18500-18599 (each file its own part of it), so they
 * never take a port another suite's server picked with port 0.
 */
export async function freePort(from: number, to: number): Promise<number> {
  for (let port = from; port <= to; port++) {
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error(`no free port in ${from}-${to}`);
}
