// `--import`ed first into every measured process: once the app's server listens, tells the
// benchmark (over IPC) where and the process's RSS; answers later requests for its RSS.
import net from 'node:net';

const listen = net.Server.prototype.listen;
let told = false;
net.Server.prototype.listen = function (...args) {
  this.once('listening', () => {
    if (told) return;
    told = true;
    process.send({ type: 'listening', port: this.address().port, rss: process.memoryUsage().rss });
  });
  return listen.apply(this, args);
};
process.on('message', (message) => {
  if (message === 'rss') process.send({ type: 'rss', rss: process.memoryUsage().rss });
});
// The IPC channel must not keep an app that never listens alive: it exits on its own error.
process.channel?.unref();
