// The bundled example: a plain HTTP server, unaware of clusterd.
import http from 'node:http';

const port = Number(process.env.PORT ?? 3000);
const server = http.createServer((request, response) => {
  response.setHeader('content-type', 'text/plain');
  response.end(`hello from worker ${process.env.CLUSTERD_WORKER_ID ?? '-'} (pid ${process.pid})\n`);
});

server.listen(port, () => {
  const address = server.address();
  console.log(`listening on ${typeof address === 'string' ? address : address?.port}`);
});
