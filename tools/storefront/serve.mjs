// A static file server for the built storefront with the SPA fallback that
// react-router needs: a path that is not a file gets index.html. No dependencies,
// so the harness needs nothing beyond puppeteer-core.
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve } from 'node:path';

const root = resolve(process.argv[2] || 'build');
const port = Number(process.argv[3] || 13000);
const host = process.argv[4] || '127.0.0.1';
const types = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css',
  '.json': 'application/json', '.png': 'image/png', '.ico': 'image/x-icon',
  '.svg': 'image/svg+xml', '.txt': 'text/plain', '.map': 'application/json',
};

async function fileFor(urlPath) {
  const candidate = normalize(join(root, decodeURIComponent(urlPath)));
  if (!candidate.startsWith(root)) return null; // no escaping the build directory
  try {
    if ((await stat(candidate)).isFile()) return candidate;
  } catch {
    // not a file: fall through to the SPA fallback
  }
  return null;
}

createServer(async (req, res) => {
  const urlPath = new URL(req.url, 'http://x').pathname;
  const file = (await fileFor(urlPath)) || join(root, 'index.html');
  try {
    const body = await readFile(file);
    res.writeHead(200, { 'Content-Type': types[extname(file)] || 'application/octet-stream' });
    res.end(body);
  } catch (err) {
    res.writeHead(500, { 'Content-Type': 'text/plain' });
    res.end(String(err));
  }
}).listen(port, host, () => console.log(`serving ${root} on http://${host}:${port}`));
